package payment

// activeCurrencies are the ISO 4217 codes of circulating currencies as of late 2026 (List One, SIX Group),
// lower-case as stored. Left out on purpose: fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious
// metals and supranational units (XAU, XAG, XPD, XPT, XDR, XSU, XUA, XBA-XBD), the test and "no currency" codes
// (XTS, XXX), and withdrawn codes (e.g. HRK, SLL, ZWL, CUC, ANG, BGN, which became XCG and the euro), because
// none of them can be charged to a card.
var activeCurrencies = setOf(
	"aed", "afn", "all", "amd", "aoa", "ars", "aud", "awg", "azn",
	"bam", "bbd", "bdt", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "btn", "bwp", "byn", "bzd",
	"cad", "cdf", "chf", "clp", "cny", "cop", "crc", "cup", "cve", "czk",
	"djf", "dkk", "dop", "dzd",
	"egp", "ern", "etb", "eur",
	"fjd", "fkp",
	"gbp", "gel", "ghs", "gip", "gmd", "gnf", "gtq", "gyd",
	"hkd", "hnl", "htg", "huf",
	"idr", "ils", "inr", "iqd", "irr", "isk",
	"jmd", "jod", "jpy",
	"kes", "kgs", "khr", "kmf", "kpw", "krw", "kwd", "kyd", "kzt",
	"lak", "lbp", "lkr", "lrd", "lsl", "lyd",
	"mad", "mdl", "mga", "mkd", "mmk", "mnt", "mop", "mru", "mur", "mvr", "mwk", "mxn", "myr", "mzn",
	"nad", "ngn", "nio", "nok", "npr", "nzd",
	"omr",
	"pab", "pen", "pgk", "php", "pkr", "pln", "pyg",
	"qar",
	"ron", "rsd", "rub", "rwf",
	"sar", "sbd", "scr", "sdg", "sek", "sgd", "shp", "sle", "sos", "srd", "ssp", "stn", "svc", "syp", "szl",
	"thb", "tjs", "tmt", "tnd", "top", "try", "ttd", "twd", "tzs",
	"uah", "ugx", "usd", "uyu", "uzs",
	"ved", "ves", "vnd", "vuv",
	"wst",
	"xaf", "xcd", "xcg", "xof", "xpf",
	"yer",
	"zar", "zmw", "zwg",
)

func setOf(codes ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(codes))
	for _, c := range codes {
		m[c] = struct{}{}
	}
	return m
}

// IsActiveCurrency reports whether code (lower-case) is a chargeable ISO 4217 currency.
func IsActiveCurrency(code string) bool {
	_, ok := activeCurrencies[code]
	return ok
}
