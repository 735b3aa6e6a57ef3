/**
 * The legal-basis catalogue `cordon policy lint` checks agreements against: which statutory gateway lets
 * which kind of body receive (or return) what a force shares, recognised by how an agreement's
 * `legalBasis` cites it. Pure data and functions; no I/O.
 *
 * Why a catalogue rather than trusting the text: an information-sharing agreement is signed once and
 * read rarely, and the mistakes a data protection officer finds in it are always the same few: a gateway
 * cited for a body it does not cover (Crime and Disorder Act 1998 s.115 for DWP, which is not a
 * "relevant authority"), a UK GDPR exemption cited as if it were a basis (DPA 2018 Sch. 2 paras 2 and 4
 * only lift some UK GDPR provisions for a controller that already has a basis), or Part 3 of the DPA
 * 2018 (law-enforcement processing) cited for a recipient that is not a competent authority. Each of
 * those is caught here by matching citations, not by reading the whole text: the catalogue is what the
 * gateway knows, and a citation it does not know is reported so that a human adds it (with the kinds of
 * body it covers) rather than it passing unread.
 *
 * Entries are one of:
 *   gateway     a statutory power or duty to disclose (or to receive and use) information: an agreement
 *               must cite at least one that fits its recipient;
 *   supporting  a provision that completes a basis (a UK GDPR Art. 6 basis, a DPA 2018 Sch. 1 condition,
 *               the recipient's own functions) but does not itself let anyone disclose;
 *   exemption   an exemption from UK GDPR provisions: never a basis, an error when cited.
 * `kinds`, when present, lists the kinds of recipient (`partner.kind`; police forces' peer gateways are
 * `police-force`) the provision covers; `competentAuthority` that the recipient must be a competent
 * authority (DPA 2018 s.30 and Sch. 7) processing for the law-enforcement purposes.
 */

export type BasisRole = 'gateway' | 'supporting' | 'exemption';

export interface LegalBasisEntry {
  id: string;
  /** How a reviewer would cite it. */
  citation: string;
  role: BasisRole;
  /** Any of these in `agreement.legalBasis` cites the entry (case-insensitive). */
  patterns: RegExp[];
  /** The instrument it belongs to, as `legalBasis` names it (`Crime and Disorder Act 1998`). */
  instrument: string;
  /** The kinds of recipient it covers; absent: any kind. */
  kinds?: readonly string[];
  /** The recipient must be a competent authority (DPA 2018 Part 3). */
  competentAuthority?: boolean;
  /** What it does, and for an exemption what to cite instead. */
  note: string;
}

/** The kinds of recipient the catalogue knows, with what each means. Others load, but no kind-bound gateway fits them. */
export const RECIPIENT_KINDS: Readonly<Record<string, string>> = {
  'police-force': "a police force (a peer force's gateway); chief officers of police are listed in DPA 2018 Sch. 7",
  'peer-force': 'a peer force seen as a recipient by the exchange (the same as police-force)',
  'local-authority': 'a county, district, unitary or metropolitan council, including its housing and children\'s services',
  'fire-and-rescue-authority': 'a fire and rescue authority',
  'probation-service': 'a provider of probation services',
  'health-body': 'an integrated care board, NHS trust or local health board',
  'social-landlord': 'a registered provider of social housing (registered social landlord)',
  'benefits-authority': 'the Department for Work and Pensions (benefits, counter fraud)',
  'revenue-authority': 'HM Revenue and Customs',
  'immigration-authority': 'the Home Office acting for immigration purposes (Immigration Enforcement)',
  'vehicle-licensing-authority': 'the Driver and Vehicle Licensing Agency (an executive agency of the Department for Transport)',
  'government-department': 'another UK government department',
  'executive-agency': "another executive agency of a government department",
};

const POLICE = ['police-force', 'peer-force'];
/** Crime and Disorder Act 1998 s.115(2): the "relevant authorities". */
const S115_AUTHORITIES = [...POLICE, 'local-authority', 'fire-and-rescue-authority', 'probation-service', 'health-body', 'social-landlord'];
/** Digital Economy Act 2017 Part 5: the public authorities the regulations specify (both sides must be). */
const DEA_SPECIFIED = ['local-authority', 'fire-and-rescue-authority', 'health-body', 'social-landlord', 'benefits-authority', 'revenue-authority', 'immigration-authority', 'vehicle-licensing-authority', 'government-department', 'executive-agency'];

// Citation pieces: `s.115`, `s. 115`, `section 115`, `ss.109A-110A`; `Sch. 2`, `Schedule 2`; `para 2`, `paragraph 2`.
const S = String.raw`(?:ss?\.\s*|sections?\s+)`;
const SCH = String.raw`(?:Sch(?:edule|\.)?\s*)`;
const PARA = String.raw`(?:para(?:graph|\.)?s?\s*)`;
const DPA = String.raw`(?:Data Protection Act 2018|DPA 2018)`;
const rx = (source: string) => new RegExp(source, 'i');
/** A citation of `section` within the same clause (up to the next `;`) as the instrument. */
const within = (instrument: string, section: string) => rx(`${instrument}[^;]*?${section}`);

export const LEGAL_BASES: readonly LegalBasisEntry[] = [
  {
    id: 'cda-1998-s115',
    citation: 'Crime and Disorder Act 1998 s.115',
    role: 'gateway',
    instrument: 'Crime and Disorder Act 1998',
    patterns: [within('Crime and Disorder Act 1998', `${S}115\\b`)],
    kinds: S115_AUTHORITIES,
    note: 'a power to disclose to a relevant authority (s.115(2)) where necessary for the purposes of the Act: crime and disorder reduction',
  },
  {
    id: 'dpa-2018-part3-s35',
    citation: 'Data Protection Act 2018 Part 3 s.35',
    role: 'gateway',
    instrument: 'Data Protection Act 2018',
    patterns: [rx(`${DPA},?\\s*(?:Part\\s*3\\b|s\\.\\s*35\\b|section\\s+35\\b)`), rx(`${DPA}[^;]*?${S}35\\b`)],
    competentAuthority: true,
    note: 'law-enforcement processing (the first data protection principle) by and between competent authorities: the bodies in DPA 2018 Sch. 7 (police forces, government departments, HMRC, the NCA…) processing for the law-enforcement purposes',
  },
  {
    id: 'dea-2017-part5',
    citation: 'Digital Economy Act 2017 Part 5',
    role: 'gateway',
    instrument: 'Digital Economy Act 2017',
    patterns: [within('Digital Economy Act 2017', `(?:Part\\s*5\\b|${S}(?:3[5-9]|4\\d|5\\d|6[0-4])\\b)`)],
    kinds: DEA_SPECIFIED,
    note: 'public service delivery (s.35), debt owed to the public sector (s.48) and fraud against the public sector (s.56): disclosure between the public authorities the regulations specify, for the objectives they set',
  },
  {
    id: 'ssaa-1992',
    citation: 'Social Security Administration Act 1992 (s.122 and the Part VI enforcement powers)',
    role: 'gateway',
    instrument: 'Social Security Administration Act 1992',
    patterns: [rx('Social Security Administration Act 1992')],
    kinds: ['benefits-authority', 'local-authority'],
    note: 'the social security gateways (s.122 and following) and the benefit fraud powers of authorised officers (ss.109A-110A): for DWP and the local authorities administering benefits',
  },
  {
    id: 'crca-2005-s18-s20',
    citation: 'Commissioners for Revenue and Customs Act 2005 ss.17-20',
    role: 'gateway',
    instrument: 'Commissioners for Revenue and Customs Act 2005',
    patterns: [within('Commissioners for Revenue and Customs Act 2005', `${S}(?:1[78]|20)\\b`)],
    kinds: ['revenue-authority'],
    note: "HMRC's use of the information it receives (s.17) and its disclosure back, in the public interest, for criminal investigations (s.18(2), s.20)",
  },
  {
    id: 'children-act-2004',
    citation: 'Children Act 2004 s.10 and s.11',
    role: 'gateway',
    instrument: 'Children Act 2004',
    patterns: [within('Children Act 2004', `${S}1[01]\\b`)],
    kinds: ['local-authority'],
    note: 'co-operation to improve the well-being of children (s.10) and the duty on the police, among others, to safeguard and promote their welfare (s.11): disclosure to the local authority as children\'s services authority',
  },
  {
    id: 'iaa-1999-s20',
    citation: 'Immigration and Asylum Act 1999 s.20',
    role: 'gateway',
    instrument: 'Immigration and Asylum Act 1999',
    patterns: [within('Immigration and Asylum Act 1999', `${S}20\\b`)],
    kinds: ['immigration-authority'],
    note: 'supply of information by a chief officer of police to the Secretary of State for immigration purposes',
  },
  {
    id: 'rvrl-2002-reg27',
    citation: 'Road Vehicles (Registration and Licensing) Regulations 2002 reg.27',
    role: 'gateway',
    instrument: 'Road Vehicles (Registration and Licensing) Regulations 2002',
    patterns: [within('Road Vehicles \\(Registration and Licensing\\) Regulations 2002', '(?:reg(?:ulation|\\.)?\\s*27)\\b')],
    kinds: ['vehicle-licensing-authority'],
    note: 'release of vehicle keeper data by the Secretary of State (DVLA) to the police',
  },
  {
    id: 'police-act-1996-collaboration',
    citation: 'Police Act 1996 s.22A (collaboration agreements)',
    role: 'supporting',
    instrument: 'Police Act 1996',
    patterns: [within('Police Act 1996', `${S}(?:22A|23)\\b`)],
    kinds: POLICE,
    note: 'collaboration agreements between police forces: the frame for sharing between forces under DPA 2018 Part 3',
  },
  // ---- provisions that complete a basis ----------------------------------------------------------
  {
    id: 'uk-gdpr',
    citation: 'UK GDPR Art. 6(1)(e), Art. 9 and Art. 10',
    role: 'supporting',
    instrument: 'UK GDPR',
    patterns: [rx('UK GDPR')],
    note: "the recipient's own basis for processing under UK GDPR (public task; special category and criminal offence data)",
  },
  {
    id: 'dpa-2018-sch1',
    citation: 'Data Protection Act 2018 s.10 and Sch. 1 conditions',
    role: 'supporting',
    instrument: 'Data Protection Act 2018',
    patterns: [rx(`${DPA}[^;]*?${SCH}1\\b`), rx(`${DPA}[^;]*?${S}10\\b`)],
    note: 'the UK GDPR conditions for special category and criminal offence data (e.g. Sch. 1 para 10 preventing or detecting unlawful acts, para 18 safeguarding of children and individuals at risk)',
  },
  {
    id: 'dpa-2018-sch8',
    citation: 'Data Protection Act 2018 Sch. 8 conditions',
    role: 'supporting',
    instrument: 'Data Protection Act 2018',
    patterns: [rx(`${DPA}[^;]*?${SCH}8\\b`)],
    competentAuthority: true,
    note: 'the conditions for sensitive processing under Part 3 (law enforcement): for competent authorities only',
  },
  {
    id: 'children-act-1989',
    citation: 'Children Act 1989 s.17 and s.47',
    role: 'supporting',
    instrument: 'Children Act 1989',
    patterns: [rx('Children Act 1989')],
    kinds: ['local-authority'],
    note: "the local authority's duties to children in need (s.17) and to make enquiries where a child is at risk of significant harm (s.47)",
  },
  {
    id: 'housing-act-2004',
    citation: 'Housing Act 2004',
    role: 'supporting',
    instrument: 'Housing Act 2004',
    patterns: [rx('Housing Act 2004')],
    kinds: ['local-authority'],
    note: "the local housing authority's licensing and enforcement functions (Part 2: houses in multiple occupation)",
  },
  {
    id: 'rta-1988',
    citation: 'Road Traffic Act 1988 Part III',
    role: 'supporting',
    instrument: 'Road Traffic Act 1988',
    patterns: [rx('Road Traffic Act 1988')],
    kinds: ['vehicle-licensing-authority', ...POLICE],
    note: 'driver licensing: the records DVLA keeps and checks',
  },
  {
    id: 'poca-2002',
    citation: 'Proceeds of Crime Act 2002',
    role: 'supporting',
    instrument: 'Proceeds of Crime Act 2002',
    patterns: [rx('Proceeds of Crime Act 2002')],
    note: 'money laundering offences and the recovery of criminal property: a purpose, not a power to disclose',
  },
  {
    id: 'msa-2015',
    citation: 'Modern Slavery Act 2015',
    role: 'supporting',
    instrument: 'Modern Slavery Act 2015',
    patterns: [rx('Modern Slavery Act 2015')],
    note: 'protection of victims of modern slavery: a limit on what is shared, not a power to share',
  },
  {
    id: 'naba-2022',
    citation: 'Nationality and Borders Act 2022 Part 5',
    role: 'supporting',
    instrument: 'Nationality and Borders Act 2022',
    patterns: [rx('Nationality and Borders Act 2022')],
    note: 'identification and support of victims of modern slavery: a limit on what is shared, not a power to share',
  },
  // ---- exemptions: never a basis -----------------------------------------------------------------
  {
    id: 'dpa-2018-sch2-para2',
    citation: 'Data Protection Act 2018 Sch. 2 para 2 (crime and taxation)',
    role: 'exemption',
    instrument: 'Data Protection Act 2018',
    patterns: [rx(`${SCH}2\\b(?:,?\\s*Part\\s*1\\b)?,?\\s*${PARA}2\\b`)],
    note: 'exempts a UK GDPR controller from some provisions (e.g. purpose limitation) where applying them would prejudice crime prevention or tax collection; it is not a basis for disclosure: cite the statutory gateway, and for law-enforcement recipients DPA 2018 Part 3 s.35',
  },
  {
    id: 'dpa-2018-sch2-para4',
    citation: 'Data Protection Act 2018 Sch. 2 para 4 (immigration)',
    role: 'exemption',
    instrument: 'Data Protection Act 2018',
    patterns: [rx(`${SCH}2\\b(?:,?\\s*Part\\s*1\\b)?,?\\s*${PARA}4\\b`)],
    note: 'exempts a UK GDPR controller from some provisions for effective immigration control (and the Court of Appeal found it incompatible with UK GDPR as first enacted); it is not a basis for disclosure: cite Immigration and Asylum Act 1999 s.20 and DPA 2018 Part 3 s.35',
  },
];

/** A recipient as the catalogue sees it. */
export interface Recipient {
  kind: string;
  competentAuthority: boolean;
}

export interface BasisProblem {
  severity: 'error' | 'warning';
  message: string;
}

export interface BasisAssessment {
  /** The catalogue entries the text cites, in catalogue order. */
  cited: LegalBasisEntry[];
  problems: BasisProblem[];
}

/** `Crime and Disorder Act 1998`, `Road Vehicles (Registration and Licensing) Regulations 2002`, `UK GDPR`…: what the text cites. */
const INSTRUMENT = /\b(?:[A-Z][A-Za-z']*(?:\s+\([A-Z][A-Za-z ]*\))?\s+(?:(?:and|of|for|the|to|in)\s+)?)+(?:Act|Regulations|Order)\s+\d{4}\b/g;
const KNOWN_INSTRUMENTS = new Set(LEGAL_BASES.map((e) => normalise(e.instrument)));

function normalise(s: string): string {
  return s.replace(/\s+/g, ' ').trim().toLowerCase();
}

/** The instruments named in `text` that the catalogue does not know. */
export function unknownInstruments(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.replace(/\s+/g, ' ').matchAll(INSTRUMENT)) {
    // "…agreement (Modern Slavery Act 2015": the leading words before the instrument's own name vary.
    const words = m[0].split(' ');
    let known = false;
    for (let i = 0; i < words.length && !known; i++) known = KNOWN_INSTRUMENTS.has(normalise(words.slice(i).join(' ')));
    if (!known) out.add(m[0]);
  }
  return [...out];
}

export function citedBases(text: string): LegalBasisEntry[] {
  const flat = text.replace(/\s+/g, ' ');
  return LEGAL_BASES.filter((e) => e.patterns.some((p) => p.test(flat)));
}

function kindList(kinds: readonly string[]): string {
  return kinds.filter((k) => k !== 'peer-force').join(', ');
}

/** Checks an agreement's `legalBasis` against the catalogue for one recipient. */
export function assessLegalBasis(text: string, recipient: Recipient): BasisAssessment {
  const cited = citedBases(text);
  const problems: BasisProblem[] = [];
  for (const e of cited) {
    if (e.role === 'exemption') {
      problems.push({ severity: 'error', message: `cites ${e.citation}, an exemption and not a basis: it ${e.note}` });
      continue;
    }
    if (e.kinds !== undefined && !e.kinds.includes(recipient.kind)) {
      problems.push({ severity: 'error', message: `cites ${e.citation}, which does not cover a recipient of kind ${recipient.kind}: it is ${e.note}, and covers ${kindList(e.kinds)}` });
    }
    if (e.competentAuthority === true && !recipient.competentAuthority) {
      problems.push({
        severity: 'error',
        message: `cites ${e.citation}, which is for competent authorities processing for the law-enforcement purposes, and the recipient is not one (set competentAuthority: true only for a body in DPA 2018 Sch. 7; otherwise cite the gateway and the recipient's UK GDPR basis)`,
      });
    }
  }
  for (const name of unknownInstruments(text)) {
    problems.push({ severity: 'error', message: `cites ${name}, which the legal-basis catalogue does not know (gateway/governance/legal-bases.ts): add it, with the kinds of recipient it covers, or correct the citation` });
  }
  if (!cited.some((e) => e.role === 'gateway')) {
    problems.push({ severity: 'error', message: `names no statutory gateway the legal-basis catalogue knows (${LEGAL_BASES.filter((e) => e.role === 'gateway').map((e) => e.citation).join('; ')})` });
  }
  if (RECIPIENT_KINDS[recipient.kind] === undefined) {
    problems.push({ severity: 'warning', message: `kind ${recipient.kind} is not one the legal-basis catalogue knows (${Object.keys(RECIPIENT_KINDS).filter((k) => k !== 'peer-force').join(', ')}): no kind-bound gateway can fit it` });
  }
  return { cited, problems };
}
