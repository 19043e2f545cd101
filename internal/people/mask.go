package people

import (
	"strings"
	"unicode/utf8"
)

// The masking below is the default display of personal data in lists,
// details, exports, the API and sync payloads. Every function works on runes,
// keeps the rune count of its input (so columns line up and the length is no
// more revealing than the original layout), and never panics: invalid UTF-8
// bytes count as one rune each and come out as U+FFFD or '*'.

// MaskName keeps the surname and replaces every other rune with '*':
// 张三 → 张*, 张三丰 → 张**, 欧阳娜娜 → 欧阳**. A compound surname is kept whole
// only when the name has at least 3 runes (a 2-rune 欧阳 is more likely
// surname 欧 and given name 阳). Latin names keep their first letter
// (John Smith → J*********). A 1-rune name is masked completely: keeping
// the "surname" would show all of it.
func MaskName(name string) string {
	n := utf8.RuneCountInString(name)
	keep := 1
	switch {
	case n < 2:
		keep = 0
	case n >= 3 && compoundSurname(name):
		keep = 2
	}
	return maskRunes(name, keep, 0)
}

// MaskIDNumber keeps the first 2 and last 2 characters and replaces the rest
// with '*' (11**************1X); values shorter than 5 are masked completely.
func MaskIDNumber(s string) string {
	if utf8.RuneCountInString(s) < 5 {
		return maskRunes(s, 0, 0)
	}
	return maskRunes(s, 2, 2)
}

// MaskPhone keeps the first 3 and last 4 digits of an 11-character number
// (138****5678); of any other length it keeps the last 2, and values shorter
// than 5 are masked completely.
func MaskPhone(s string) string {
	switch n := utf8.RuneCountInString(s); {
	case n == 11:
		return maskRunes(s, 3, 4)
	case n < 5:
		return maskRunes(s, 0, 0)
	default:
		return maskRunes(s, 0, 2)
	}
}

// maskRunes keeps the first head and last tail runes of s and replaces the
// others with '*'.
func maskRunes(s string, head, tail int) string {
	n := utf8.RuneCountInString(s)
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for _, r := range s {
		if i < head || i >= n-tail {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
		i++
	}
	return b.String()
}

// compoundSurname reports whether name starts with a common two-character
// surname (复姓), in simplified or traditional characters.
func compoundSurname(name string) bool {
	first, size := utf8.DecodeRuneInString(name)
	second, _ := utf8.DecodeRuneInString(name[size:])
	switch string([]rune{first, second}) {
	case "欧阳", "歐陽", "司马", "司馬", "诸葛", "諸葛", "上官", "东方", "東方",
		"皇甫", "尉迟", "尉遲", "公孙", "公孫", "慕容", "长孙", "長孫", "宇文",
		"司徒", "令狐", "夏侯", "端木", "独孤", "獨孤", "南宫", "南宮", "西门", "西門",
		"万俟", "萬俟", "轩辕", "軒轅", "呼延", "百里", "司空", "澹台", "澹臺",
		"公羊", "赫连", "赫連", "宗政", "濮阳", "濮陽", "申屠", "钟离", "鍾離",
		"闻人", "聞人", "太史", "鲜于", "鮮于", "闾丘", "閭丘", "拓跋", "第五",
		"左丘", "东郭", "東郭", "羊舌", "微生", "梁丘", "乐正", "樂正",
		"漆雕", "公冶", "仲孙", "仲孫", "单于", "單于", "亓官", "司寇", "巫马", "巫馬",
		"谷梁", "穀梁", "段干", "即墨", "东门", "東門", "南门", "南門":
		return true
	}
	return false
}
