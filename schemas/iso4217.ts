/**
 * ISO 4217 alphabetic codes that a `currency` field may hold (schemas/validate.ts).
 *
 * Source: the SIX "List One" of current codes (as shipped in zod 4.6's currencyCode pattern),
 * without the codes that are not money a merchant is paid in: fund and accounting units (BOV,
 * CHE, CHW, CLF, COU, MXV, USN, UYI, UYW, XAD, XDR, XSU, XUA), precious metals (XAG, XAU, XPD,
 * XPT), bond-market units (XBA-XBD), the testing code XTS and XXX ("no currency").
 * Codes withdrawn since 2023 are kept so that late events and replays in them still decode.
 * Any other string is UNKNOWN_CURRENCY; adding a code is a one-line, backward-compatible change.
 */
const CURRENT = (
  'AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD ' +
  'CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD ' +
  'GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD ' +
  'KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO ' +
  'NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE ' +
  'SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND ' +
  'VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG'
).split(' ');

/** Withdrawn since 2023: Croatian kuna, Sierra Leone leone (old), Zimbabwe dollar, Netherlands Antillean guilder, Bulgarian lev. */
const RECENTLY_WITHDRAWN = ['HRK', 'SLL', 'ZWL', 'ANG', 'BGN'];

export const ISO_4217_CURRENCIES: ReadonlySet<string> = new Set([...CURRENT, ...RECENTLY_WITHDRAWN]);

export function isCurrencyCode(code: string): boolean {
  return ISO_4217_CURRENCIES.has(code);
}
