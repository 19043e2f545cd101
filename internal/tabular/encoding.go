package tabular

import (
	"bufio"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// sniffWindow is how far past the first non-ASCII byte the encoding is judged.
const sniffWindow = 4096

// textReader returns the text of a CSV file as UTF-8. Bytes pass through
// while they are ASCII (the same in UTF-8 and GB18030); at the first
// non-ASCII byte the next few kilobytes decide: valid UTF-8 stays as it is,
// anything else is decoded as GB18030, which is what Excel on Chinese
// Windows writes when saving "CSV". This keeps import streaming, with no
// second pass over the file. A UTF-8 byte order mark is dropped.
func textReader(br *bufio.Reader) io.Reader {
	if bom, _ := br.Peek(3); string(bom) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	return &sniffer{br: br}
}

type sniffer struct {
	br      *bufio.Reader
	decided io.Reader
}

func (s *sniffer) Read(p []byte) (int, error) {
	if s.decided != nil {
		return s.decided.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := s.br.Peek(1); err != nil {
		return 0, err
	}
	head, _ := s.br.Peek(min(s.br.Buffered(), len(p)))
	ascii := 0
	for ascii < len(head) && head[ascii] < utf8.RuneSelf {
		ascii++
	}
	if ascii > 0 {
		return s.br.Read(p[:ascii])
	}
	window, err := s.br.Peek(sniffWindow)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return 0, err
	}
	if isUTF8(window, len(window) < sniffWindow) {
		s.decided = s.br
	} else {
		s.decided = transform.NewReader(s.br, simplifiedchinese.GB18030.NewDecoder())
	}
	return s.decided.Read(p)
}

// isUTF8 reports whether b is valid UTF-8; unless b runs to the end of the
// file, a rune cut off at its end is forgiven.
func isUTF8(b []byte, atEOF bool) bool {
	if !atEOF {
		i := len(b) - 1
		for i > 0 && len(b)-i < utf8.UTFMax && !utf8.RuneStart(b[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(b[i:]) {
			b = b[:i]
		}
	}
	return utf8.Valid(b)
}
