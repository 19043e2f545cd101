package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"
)

// maxAnswer bounds the body of an answer the load keeps; the rest is read
// and dropped.
const maxAnswer = 4 << 20

// rawReadBuffer is the raw client's read buffer: the longest status line,
// header line or chunk size line it reads.
const rawReadBuffer = 4096

// errMalformed marks an answer that is not HTTP/1.1 as the raw client reads it.
var errMalformed = errors.New("malformed answer")

// response is what send needs of an answer, from either client.
type response struct {
	status     int
	retryAfter string // the Retry-After header, "" when absent
	body       []byte // kept only when asked for
}

// rawTarget is where the raw client connects, taken from the base URL.
type rawTarget struct {
	addr   string // host:port to dial
	host   string // the Host header
	prefix string // the base URL's path, before every request's
}

// rawTargetOf reads a plain http:// base URL; ok is false for any other
// scheme, which the raw client does not speak.
func rawTargetOf(base string) (t rawTarget, ok bool, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return rawTarget{}, false, fmt.Errorf("loadgen: server URL: %w", err)
	}
	if u.Scheme != "http" {
		return rawTarget{}, false, nil
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return rawTarget{}, false, fmt.Errorf("loadgen: server URL %q: want http://host:port with at most a path", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return rawTarget{addr: addr, host: u.Host, prefix: u.EscapedPath()}, true, nil
}

// rawClient is one load client's HTTP/1.1 connection: kept alive, each
// request assembled in a reused buffer and written with one Write (a
// bufio.Writer would only copy it once more), each answer parsed in place
// from the connection's reader. It does only what the load needs, so that
// the load generator, which shares the machine with the server it
// measures, takes little of the CPU: about 20 µs a no-op request where
// net/http, with its connection goroutines and header maps, takes 62–69.
// Not safe for concurrent use.
type rawClient struct {
	target  rawTarget
	timeout time.Duration // bounds one request, dialling included
	dialer  net.Dialer

	conn net.Conn // nil before the first request and after a failure
	br   *bufio.Reader
	// reused is set once conn has answered: a failure before the next
	// answer's first byte may mean the server closed it while idle.
	reused bool
	// stop ends the watch on the Done channel watched (see watch).
	stop    func() bool
	watched <-chan struct{}
	req     []byte // the request being written
}

func newRawClient(t rawTarget, timeout time.Duration) *rawClient {
	return &rawClient{target: t, timeout: timeout, dialer: net.Dialer{KeepAlive: 30 * time.Second},
		br: bufio.NewReaderSize(nil, rawReadBuffer), req: make([]byte, 0, 1024)}
}

// rawHead is an answer's status and the headers that frame its body.
type rawHead struct {
	status     int
	retryAfter string
	length     int64 // Content-Length; -1 when absent
	chunked    bool
	close      bool // the server closes the connection after this answer
}

// do sends one request (body nil for none) and reads its answer, keeping
// the body when keep says so for its status. Any failure closes the
// connection; the next request dials a new one. As net/http does, a
// request that fails on a kept-alive connection before any answer came is
// sent once more on a new one: the server may have closed the idle
// connection just as the request went out (every request of the load may
// be repeated: registrations are idempotent by client id).
func (c *rawClient) do(ctx context.Context, method, path, token string, body []byte, keep func(status int) bool) (response, error) {
	for {
		reused := c.conn != nil && c.reused
		res, answered, err := c.try(ctx, method, path, token, body, keep)
		if err == nil {
			return res, nil
		}
		c.close()
		if !reused || answered || ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return response{}, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
}

// try makes one attempt of do; answered reports whether any byte of an
// answer came.
func (c *rawClient) try(ctx context.Context, method, path, token string, body []byte, keep func(status int) bool) (res response, answered bool, err error) {
	deadline := time.Now().Add(c.timeout)
	if c.conn == nil {
		c.dialer.Deadline = deadline
		conn, err := c.dialer.DialContext(ctx, "tcp", c.target.addr)
		if err != nil {
			return response{}, false, err
		}
		c.conn, c.reused = conn, false
		c.br.Reset(conn)
	}
	c.watch(ctx)
	if err := c.conn.SetDeadline(deadline); err != nil {
		return response{}, false, err
	}
	c.req = c.appendRequest(c.req[:0], method, path, token, body)
	if _, err := c.conn.Write(c.req); err != nil {
		return response{}, false, fmt.Errorf("write request: %w", err)
	}
	h, answered, err := c.readHead()
	if err != nil {
		return response{}, answered, err
	}
	res = response{status: h.status, retryAfter: h.retryAfter}
	if res.body, err = c.readBody(h, keep(h.status)); err != nil {
		return response{}, true, err
	}
	if h.close {
		c.close()
	} else {
		c.reused = true
	}
	return res, true, nil
}

// watch closes the connection as soon as ctx ends, so that a request
// blocked on it returns at once rather than at its deadline. The watch
// lasts as long as the connection, not one request: the load's clients
// send all their requests under the same context.
func (c *rawClient) watch(ctx context.Context) {
	done := ctx.Done()
	if c.stop != nil && done == c.watched {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	conn := c.conn
	c.stop, c.watched = context.AfterFunc(ctx, func() { conn.Close() }), done
}

// close closes the connection, if any; the next request dials a new one.
func (c *rawClient) close() {
	if c.stop != nil {
		c.stop()
		c.stop, c.watched = nil, nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// appendRequest appends the request's bytes to b: the headers net/http
// sends for the load, without its User-Agent and Accept-Encoding.
func (c *rawClient) appendRequest(b []byte, method, path, token string, body []byte) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, c.target.prefix...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.target.host...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	b = append(b, "\r\nAccept: application/json\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// readHead reads an answer's status line and headers, passing over
// interim (1xx) answers; answered reports whether any byte came.
func (c *rawClient) readHead() (h rawHead, answered bool, err error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return rawHead{}, answered || len(line) > 0, readError("status line", err)
		}
		answered = true
		h, ok := parseStatusLine(trimEOL(line))
		if !ok {
			return rawHead{}, true, fmt.Errorf("%w: status line %q", errMalformed, clip(trimEOL(line)))
		}
		if err := c.readHeaders(&h); err != nil {
			return rawHead{}, true, err
		}
		if h.status >= 200 {
			// Without framing, the body lasts until the server closes.
			if !h.chunked && h.length < 0 && h.status != 204 && h.status != 304 {
				h.close = true
			}
			return h, true, nil
		}
	}
}

// readHeaders reads header lines up to the empty one, keeping those that
// frame the body, Connection and Retry-After. Names are case-insensitive.
func (c *rawClient) readHeaders(h *rawHead) error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return readError("headers", err)
		}
		line = trimEOL(line)
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: header line %q", errMalformed, clip(line))
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || (h.length >= 0 && h.length != n) {
				return fmt.Errorf("%w: Content-Length %q", errMalformed, clip(value))
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, clip(value))
			}
			h.chunked = true
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				if equalFold(bytes.Trim(tok, " \t"), "close") {
					h.close = true
				}
			}
		case equalFold(name, "retry-after"):
			h.retryAfter = string(value)
		}
	}
}

// readBody reads the answer's body and returns it when keep (at most
// maxAnswer bytes), nil otherwise. Chunked framing comes before
// Content-Length; with neither, the body lasts until the server closes.
func (c *rawClient) readBody(h rawHead, keep bool) ([]byte, error) {
	var body []byte
	if keep {
		body = []byte{} // a kept empty body is not nil
	}
	switch {
	case h.status == 204 || h.status == 304:
		return body, nil
	case h.chunked:
		return c.readChunked(body, keep)
	case h.length >= 0:
		return c.take(body, h.length, keep)
	}
	var err error
	if keep {
		body, err = io.ReadAll(io.LimitReader(c.br, maxAnswer))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, c.br)
	}
	if err != nil {
		return nil, readError("body", err)
	}
	return body, nil
}

// readChunked reads a chunked body and its trailers.
func (c *rawClient) readChunked(body []byte, keep bool) ([]byte, error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return nil, readError("chunk size", err)
		}
		size, ok := parseChunkSize(trimEOL(line))
		if !ok {
			return nil, fmt.Errorf("%w: chunk size line %q", errMalformed, clip(trimEOL(line)))
		}
		if size == 0 {
			break
		}
		if body, err = c.take(body, size, keep); err != nil {
			return nil, err
		}
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return nil, readError("chunk end", err)
		}
		if len(trimEOL(line)) != 0 {
			return nil, fmt.Errorf("%w: %q after a chunk", errMalformed, clip(line))
		}
	}
	for { // trailers, which the load does not read
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return nil, readError("trailers", err)
		}
		if len(trimEOL(line)) == 0 {
			return body, nil
		}
	}
}

// take reads n bytes of body, appending them to body while keep and it
// holds less than maxAnswer, and dropping the rest.
func (c *rawClient) take(body []byte, n int64, keep bool) ([]byte, error) {
	if keep {
		k := int(min(n, int64(maxAnswer-len(body))))
		at := len(body)
		body = slices.Grow(body, k)[:at+k]
		if _, err := io.ReadFull(c.br, body[at:]); err != nil {
			return nil, readError("body", err)
		}
		n -= int64(k)
	}
	for n > 0 {
		d, err := c.br.Discard(int(min(n, 1<<30)))
		n -= int64(d)
		if err != nil {
			return nil, readError("body", err)
		}
	}
	return body, nil
}

// readError names what was being read; an end of input there is unexpected.
func readError(what string, err error) error {
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%w: %s longer than %d bytes", errMalformed, what, rawReadBuffer)
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read answer %s: %w", what, err)
}

// parseStatusLine reads "HTTP/1.1 200 OK" (or HTTP/1.0, which closes the
// connection after the answer).
func parseStatusLine(line []byte) (rawHead, bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return rawHead{}, false
	}
	status := 0
	for i, d := range line[9:12] {
		if d < '0' || d > '9' || (i == 0 && d == '0') {
			return rawHead{}, false
		}
		status = status*10 + int(d-'0')
	}
	return rawHead{status: status, length: -1, close: line[7] == '0'}, true
}

// parseDecimal reads a Content-Length.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// parseChunkSize reads a chunk size line: hex digits, then perhaps
// extensions after a semicolon, which are ignored.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.Trim(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range line {
		switch {
		case d >= '0' && d <= '9':
			d -= '0'
		case d >= 'a' && d <= 'f':
			d -= 'a' - 10
		case d >= 'A' && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// equalFold reports whether b is s, ignoring ASCII case; s is lower-case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// trimEOL drops a line's "\r\n" or "\n".
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// clip shortens what an error quotes of a malformed answer.
func clip(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
