package people

import (
	"testing"
	"unicode/utf8"
)

func TestMaskName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"张", "*"},
		{"张三", "张*"},
		{"张三丰", "张**"},
		{"王小二二", "王***"},
		{"欧阳", "欧*"},
		{"欧阳娜娜", "欧阳**"},
		{"欧阳锋", "欧阳*"},
		{"司马光", "司马*"},
		{"诸葛亮", "诸葛*"},
		{"上官婉儿", "上官**"},
		{"歐陽修", "歐陽*"},
		{"东方明珠", "东方**"},
		{"阿依古丽·买买提", "阿*******"},
		{"John Smith", "J*********"},
		{"Li", "L*"},
		{"é", "*"},
		{"😀😀😀", "😀**"},
		{"👨‍👩‍👧", "👨****"}, // ZWJ sequence: 3 emoji and 2 joiners are 5 runes
		{"\xff\xfe", "\uFFFD*"},
		{"张\xff三", "张**"},
		{" 张三", " **"},
	}
	for _, tt := range tests {
		got := MaskName(tt.in)
		if got != tt.want {
			t.Errorf("MaskName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if utf8.RuneCountInString(got) != utf8.RuneCountInString(tt.in) {
			t.Errorf("MaskName(%q) = %q changes the rune count", tt.in, got)
		}
	}
}

func TestMaskIDNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"1", "*"},
		{"1234", "****"},
		{"12345", "12*45"},
		{"11010519491231002X", "11**************2X"},
		{"E12345678", "E1*****78"},
		{"H12345678", "H1*****78"},
		{"护照号码一二三", "护照***二三"},
		{"ab\xffcd", "ab*cd"},
	}
	for _, tt := range tests {
		if got := MaskIDNumber(tt.in); got != tt.want {
			t.Errorf("MaskIDNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"1", "*"},
		{"1234", "****"},
		{"12345", "***45"},
		{"13812345678", "138****5678"},
		{"1381234567", "********67"},
		{"010-12345678", "**********78"},
		{"１３８１２３４５６７８", "１３８****５６７８"},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
