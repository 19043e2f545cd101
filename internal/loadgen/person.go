package loadgen

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shaobing/shaobing/internal/people"
)

// The generated residents are born on one of birthDays days from firstBirth
// (1940 to 2005: adults of every age), a thousand per day, so the sequence
// numbers 0 … PersonSpace-1 give that many distinct resident ID numbers.
var firstBirth = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)

const birthDays = 24_107 // 1940-01-01 to 2005-12-31

// PersonSpace is how many distinct persons ResidentID gives for one prefix;
// sequence numbers wrap around beyond it.
const PersonSpace = birthDays * 1000

// ResidentID returns the resident ID number (居民身份证号) of person seq: the
// 6-digit county code prefix, a birth date, a 3-digit serial and the MOD 11-2
// check character, so it passes the server's validation. Distinct seq below
// PersonSpace give distinct numbers.
func ResidentID(prefix string, seq int64) string {
	seq %= PersonSpace
	if seq < 0 {
		seq += PersonSpace
	}
	birth := firstBirth.AddDate(0, 0, int(seq/1000))
	b := make([]byte, 0, 18)
	b = append(b, prefix...)
	b = birth.AppendFormat(b, "20060102")
	serial := seq % 1000
	b = append(b, byte('0'+serial/100), byte('0'+serial/10%10), byte('0'+serial%10))
	return string(append(b, people.CheckChar(string(b))))
}

// surnames and givenNames make the generated names; the pairs repeat, as
// names do, and the ID number tells persons apart.
var (
	surnames   = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "郑", "谢"}
	givenNames = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "海燕"}
)

// PersonName returns a name for person seq.
func PersonName(seq int64) string {
	s := uint64(seq)
	return surnames[s%uint64(len(surnames))] + givenNames[s/uint64(len(surnames))%uint64(len(givenNames))]
}

// Phone returns an 11-digit mobile number for person seq: 13, 15 or 18 and
// nine digits spread over the range by a multiplicative step.
func Phone(seq int64) string {
	s := uint64(seq)
	prefix := [...]string{"13", "15", "18"}[s%3]
	digits := strconv.FormatUint(1_000_000_000+(s*7_919_993)%1_000_000_000, 10)[1:] // nine digits, leading zeros kept
	return prefix + digits
}

// ClientID returns a UUID in its usual text form, as a sampling app makes
// for each registration: version 7 (RFC 9562: the Unix time in
// milliseconds, then random bits), as shaobing's sampler page makes, when
// at is set; version 4 (all random) when at is zero, as many other apps do.
// Version 7 ids made at about the same time sort together, so the server's
// client-id index takes them at its end rather than all over it.
func ClientID(r *rand.Rand, at time.Time) string {
	var u [16]byte
	lo, hi := r.Uint64(), r.Uint64()
	for i := range 8 {
		u[i], u[8+i] = byte(lo>>(8*i)), byte(hi>>(8*i))
	}
	version := byte(0x40)
	if !at.IsZero() {
		ms := uint64(at.UnixMilli())
		for i := range 6 {
			u[i] = byte(ms >> (8 * (5 - i)))
		}
		version = 0x70
	}
	u[6] = u[6]&0x0f | version
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
