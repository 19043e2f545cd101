package demo

import (
	"math/rand/v2"
	"strings"
)

// surnames are the commonest Chinese surnames with their approximate share
// (per mille) of the population, from the 2020 census household register
// ranking; the tail of rarer surnames shares what is left.
var surnames = []struct {
	name   string
	weight int
}{
	{"王", 73}, {"李", 72}, {"张", 69}, {"刘", 54}, {"陈", 53}, {"杨", 31}, {"黄", 23}, {"赵", 22},
	{"吴", 20}, {"周", 19}, {"徐", 13}, {"孙", 12}, {"马", 12}, {"朱", 11}, {"胡", 10}, {"郭", 10},
	{"何", 9}, {"林", 9}, {"高", 9}, {"罗", 8}, {"郑", 8}, {"梁", 7}, {"谢", 6}, {"宋", 6},
	{"唐", 6}, {"许", 5}, {"韩", 5}, {"邓", 5}, {"冯", 5}, {"曹", 5}, {"彭", 5}, {"曾", 5},
	{"肖", 5}, {"田", 4}, {"董", 4}, {"潘", 4}, {"袁", 4}, {"蔡", 4}, {"蒋", 4}, {"余", 4},
	{"于", 4}, {"杜", 4}, {"叶", 4}, {"程", 4}, {"魏", 3}, {"苏", 3}, {"吕", 3}, {"丁", 3},
	{"任", 3}, {"卢", 3}, {"姚", 3}, {"沈", 3}, {"钟", 3}, {"姜", 3}, {"崔", 3}, {"谭", 3},
	{"陆", 3}, {"范", 3}, {"汪", 3}, {"廖", 3}, {"石", 3}, {"金", 3}, {"韦", 2}, {"贾", 2},
	{"夏", 2}, {"付", 2}, {"方", 2}, {"邹", 2}, {"熊", 2}, {"白", 2}, {"孟", 2}, {"秦", 2},
	{"邱", 2}, {"侯", 2}, {"江", 2}, {"尹", 2}, {"薛", 2}, {"闫", 2}, {"段", 2}, {"雷", 2},
	{"龙", 2}, {"黎", 2}, {"史", 2}, {"陶", 2}, {"贺", 2}, {"毛", 2}, {"郝", 2}, {"顾", 2},
	{"龚", 2}, {"邵", 2}, {"万", 2}, {"覃", 2}, {"武", 2}, {"钱", 2}, {"戴", 2}, {"严", 2},
	{"欧阳", 1}, {"诸葛", 1}, {"司马", 1}, {"上官", 1},
}

// Characters of given names, by sex and generation: older people's names
// lean on characters that have since gone out of fashion.
const (
	maleOld     = "国建军明华志伟永德春海平福庆文忠宝林成金荣昌贵祥发生根"
	femaleOld   = "秀英兰芳玉珍凤华桂梅淑素琴霞美丽红翠云菊莲花娥月香"
	maleYoung   = "浩宇子轩俊杰博文一鸣睿哲思远天佑梓涵嘉豪志强晨阳家乐"
	femaleYoung = "欣怡梓萱雨涵诗琪思彤可馨佳怡子涵梦瑶雅静一诺紫嫣语桐"
)

// nameDrawer draws plausible names.
type nameDrawer struct {
	total int
}

func newNameDrawer() *nameDrawer {
	d := &nameDrawer{}
	for _, s := range surnames {
		d.total += s.weight
	}
	return d
}

// draw returns a name for a person of the given sex and birth year.
func (d *nameDrawer) draw(r *rand.Rand, male bool, birthYear int) string {
	n := r.IntN(d.total)
	surname := surnames[len(surnames)-1].name
	for _, s := range surnames {
		if n < s.weight {
			surname = s.name
			break
		}
		n -= s.weight
	}
	var chars []rune
	switch {
	case male && birthYear < 1980:
		chars = []rune(maleOld)
	case male:
		chars = []rune(maleYoung)
	case birthYear < 1980:
		chars = []rune(femaleOld)
	default:
		chars = []rune(femaleYoung)
	}
	var b strings.Builder
	b.WriteString(surname)
	b.WriteRune(chars[r.IntN(len(chars))])
	// About one in five has a one-character given name.
	if r.IntN(5) != 0 {
		b.WriteRune(chars[r.IntN(len(chars))])
	}
	return b.String()
}

// mobilePrefixes are the three-digit prefixes of the mainland carriers'
// mobile number blocks.
var mobilePrefixes = []string{
	"134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159", "178", "182", "183", "184", "187", "188", "198", // China Mobile
	"130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186", // China Unicom
	"133", "149", "153", "173", "177", "180", "181", "189", "191", "199", // China Telecom
}

// phone returns a plausible mobile number.
func phone(r *rand.Rand) string {
	var b [11]byte
	copy(b[:], mobilePrefixes[r.IntN(len(mobilePrefixes))])
	for i := 3; i < 11; i++ {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b[:])
}

// roads are street names for addresses.
var roads = []string{"海滨路", "人民路", "新城路", "渔港路", "中心街", "建设路", "文化路", "东风路", "环岛路", "兴业路", "和平路", "望海路"}

// shortVillage cuts the committee suffix off a village or community name:
// 东岙社区居民委员会 → 东岙社区, 小朴村民委员会 → 小朴村.
func shortVillage(name string) string {
	for _, suffix := range []string{"居民委员会", "村民委员会", "委员会"} {
		if s, ok := strings.CutSuffix(name, suffix); ok {
			if strings.HasSuffix(suffix, "村民委员会") {
				return s + "村"
			}
			return s
		}
	}
	return name
}
