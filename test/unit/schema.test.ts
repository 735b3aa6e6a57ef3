import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors/index.js';
import { findSchemaPath, schemaLeafPaths, walkSchema } from '../../gateway/dossier/paths.js';
import { dossierSchema, hitsSchema } from '../../gateway/dossier/schemas.js';
import { validateDossier, validateHits } from '../../gateway/dossier/validate.js';

// Verbatim copies of the contract examples (contract/examples/ beside DESIGN.md), so this test needs
// nothing outside the repository. A separate test re-reads the originals when they are present.
const DOSSIER_FULL = `{
  "schema": "cordon.dossier/v1",
  "reference": "WMP-OCG-2026-00412",
  "originator": {
    "force": "west-midlands",
    "unit": "Regional Organised Crime Unit",
    "officer": { "id": "WM4412", "name": "DS Priya Raman", "email": "priya.raman@example.police.uk" }
  },
  "createdAt": "2026-11-20T09:15:00Z",
  "classification": "OFFICIAL-SENSITIVE",
  "handling": { "code": "C", "conditions": "Not to be disclosed in proceedings without the originator's consent" },
  "purpose": "Identify additional addresses, vehicles, tenancies and benefit claims linked to members of the group, to support disruption",
  "group": {
    "ocgmId": "OCG-WM-0193",
    "name": "Foleshill Network",
    "threatBand": "B",
    "crimeTypes": ["drugs-supply", "money-laundering", "labour-exploitation", "organised-acquisitive"],
    "areas": ["Coventry", "Wolverhampton"]
  },
  "subjects": [
    {
      "id": "S1",
      "role": "principal",
      "name": { "given": "Daniel", "family": "Okafor", "aliases": ["Danny O", "D. Oka"] },
      "dateOfBirth": "1987-04-12",
      "gender": "male",
      "nationality": "GB",
      "identifiers": { "pnc": "09/123456X", "niNumber": "QQ123456C", "drivingLicence": "OKAFO804127D99XY" },
      "addresses": [
        { "type": "home", "line1": "14 Cedar Road", "town": "Coventry", "postcode": "CV6 5HX", "from": "2023-02-01" },
        { "type": "business", "line1": "Unit 4, Holbrook Trading Estate", "town": "Coventry", "postcode": "CV6 4FL" }
      ],
      "vehicles": [
        { "vrm": "AB12 CDE", "make": "BMW", "model": "X5", "colour": "black", "relationship": "keeper" },
        { "vrm": "KX19 LMN", "make": "Mercedes-Benz", "model": "Sprinter", "colour": "white", "relationship": "user" }
      ],
      "phones": ["07700 900123", "07700 900456"],
      "emails": ["d.okafor@example.com"],
      "bankAccounts": [ { "sortCode": "12-34-56", "accountNumber": "12345678", "bank": "Example Bank" } ],
      "businesses": [ { "name": "Cedar Hand Car Wash Ltd", "companyNumber": "09876543", "role": "director" } ],
      "associates": [ { "subject": "S2", "relationship": "brother" }, { "subject": "S3", "relationship": "employee" } ],
      "enforcementHistory": [
        { "date": "2024-06-03", "type": "arrest", "offence": "possession with intent to supply class A", "outcome": "charged" },
        { "date": "2025-01-17", "type": "search-warrant", "offence": "money laundering", "outcome": "cash seized" }
      ],
      "intelligence": [
        { "id": "INT-88121", "recordedAt": "2026-09-01", "summary": "Stores cash at the business unit overnight", "grading": { "source": 2, "intelligence": "B", "handling": "P" }, "sourceType": "CHIS" },
        { "id": "INT-88377", "recordedAt": "2026-10-14", "summary": "Believed to control rentals of three houses on Cedar Road", "grading": { "source": 1, "intelligence": "B", "handling": "C" }, "sourceType": "partner-agency", "handlingConditions": "Housing enforcement only" }
      ]
    },
    {
      "id": "S2",
      "role": "member",
      "name": { "given": "Samuel", "family": "Okafor" },
      "dateOfBirth": "1991-11-30",
      "gender": "male",
      "nationality": "GB",
      "identifiers": { "pnc": "12/998877K", "niNumber": "QQ654321A" },
      "addresses": [ { "type": "home", "line1": "Flat 3, 88 Stoney Stanton Road", "town": "Coventry", "postcode": "CV1 4FS" } ],
      "vehicles": [ { "vrm": "FG65 HJK", "make": "Audi", "model": "A3", "colour": "grey", "relationship": "keeper" } ],
      "phones": ["07700 900789"],
      "benefits": [ { "type": "Personal Independence Payment", "source": "declared on arrest" } ],
      "associates": [ { "subject": "S1", "relationship": "brother" } ],
      "enforcementHistory": [ { "date": "2025-08-22", "type": "arrest", "offence": "assault occasioning actual bodily harm", "outcome": "released under investigation" } ],
      "intelligence": [
        { "id": "INT-90110", "recordedAt": "2026-08-19", "summary": "Collects debts for the group using violence", "grading": { "source": 2, "intelligence": "C", "handling": "P" }, "sourceType": "public" }
      ]
    },
    {
      "id": "S3",
      "role": "potential-victim",
      "name": { "given": "Andrei", "family": "Popescu" },
      "dateOfBirth": "2000-02-05",
      "gender": "male",
      "nationality": "RO",
      "identifiers": { "passport": "RO0512345" },
      "addresses": [ { "type": "home", "line1": "22 Cedar Road", "town": "Coventry", "postcode": "CV6 5HX", "from": "2026-03-01" } ],
      "phones": ["07700 900321"],
      "vulnerabilities": ["labour-exploitation", "limited-english", "debt-bondage"],
      "associates": [ { "subject": "S1", "relationship": "employer" } ],
      "intelligence": [
        { "id": "INT-90555", "recordedAt": "2026-10-02", "summary": "Works at the car wash for no pay; lives in an overcrowded house", "grading": { "source": 1, "intelligence": "A", "handling": "P" }, "sourceType": "officer" }
      ]
    },
    {
      "id": "S4",
      "role": "associate",
      "name": { "given": "Tyler", "family": "Brooks" },
      "dateOfBirth": "2010-07-19",
      "gender": "male",
      "nationality": "GB",
      "addresses": [ { "type": "home", "line1": "5 Lythalls Lane", "town": "Coventry", "postcode": "CV6 6FP" } ],
      "phones": ["07700 900654"],
      "vulnerabilities": ["child-criminal-exploitation"],
      "associates": [ { "subject": "S2", "relationship": "runner" } ],
      "intelligence": [
        { "id": "INT-90601", "recordedAt": "2026-10-20", "summary": "Seen carrying packages between Cedar Road addresses", "grading": { "source": 2, "intelligence": "B", "handling": "C" }, "sourceType": "neighbourhood-officer", "handlingConditions": "Safeguarding referral only" }
      ]
    }
  ],
  "locations": [
    { "type": "storage", "line1": "Garage 7, Lockhurst Lane", "town": "Coventry", "postcode": "CV6 5PD", "notes": "Suspected cannabis storage" }
  ],
  "requests": {
    "checks": ["addresses", "tenancies", "vehicles", "benefits", "businesses"]
  }
}`;
const DOSSIER_MINIMAL = `{
  "schema": "cordon.dossier/v1",
  "reference": "WMP-OCG-2026-00999",
  "originator": { "force": "west-midlands", "officer": { "id": "WM1001" } },
  "createdAt": "2026-11-21T08:00:00Z",
  "classification": "OFFICIAL",
  "handling": { "code": "P" },
  "purpose": "Vehicle check for a single group member",
  "subjects": [
    {
      "id": "S1",
      "role": "member",
      "name": { "given": "Lee", "family": "Harris" },
      "dateOfBirth": "1979-01-23",
      "vehicles": [ { "vrm": "LX07 ABC" } ]
    }
  ]
}`;
const HITS_COUNCIL_HOUSING = `{
  "schema": "cordon.hits/v1",
  "packet": "<the packet id the partner received>",
  "hits": [
    {
      "subject": "<the subject ref exactly as it appears in the packet>",
      "kind": "tenancy",
      "detail": { "line1": "18 Cedar Road", "town": "Coventry", "postcode": "CV6 5HX", "tenure": "council", "since": "2022-05-01", "tenant": "Daniel Okafor" },
      "matchedOn": ["name", "dateOfBirth"],
      "confidence": "confirmed",
      "partnerRecordRef": "HSG-778812"
    },
    {
      "subject": "<another subject ref from the same packet>",
      "kind": "address",
      "detail": { "line1": "22 Cedar Road", "town": "Coventry", "postcode": "CV6 5HX", "occupants": 9, "note": "HMO licence refused 2025" },
      "matchedOn": ["postcode"],
      "confidence": "possible",
      "partnerRecordRef": "HMO-2025-0441"
    }
  ]
}`;
const CONTRACT_DIR = '/work/shared/contract/examples';

type Json = Record<string, any>;  

const full = (): Json => JSON.parse(DOSSIER_FULL) as Json;
const minimal = (): Json => JSON.parse(DOSSIER_MINIMAL) as Json;
const hits = (): Json => JSON.parse(HITS_COUNCIL_HOUSING) as Json;

function failure(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError, nothing was thrown');
}

/** Asserts a schema_violation with a detail at `path` (and, when given, that message). */
function expectViolation(fn: () => unknown, path: string, message?: string | RegExp): GatewayError {
  const err = failure(fn);
  expect(err.code).toBe('schema_violation');
  const paths = (err.details ?? []).map((d) => d.path);
  expect(paths).toContain(path);
  if (message !== undefined) {
    const messages = (err.details ?? []).filter((d) => d.path === path).map((d) => d.message);
    if (typeof message === 'string') expect(messages).toContain(message);
    else expect(messages.some((m) => message.test(m))).toBe(true);
  }
  return err;
}

describe('dossier schema: the contract examples', () => {
  it('accepts the full example unchanged and returns it', () => {
    const body = full();
    const copy = structuredClone(body);
    expect(validateDossier(body)).toBe(body);
    expect(body).toEqual(copy);
  });

  it('accepts the minimal example unchanged', () => {
    expect(validateDossier(minimal()).subjects[0]?.vehicles?.[0]?.vrm).toBe('LX07 ABC');
  });

  it.skipIf(!existsSync(CONTRACT_DIR))('accepts the original example files, and the copies here are verbatim', () => {
    for (const [name, copy] of [
      ['dossier-full.json', DOSSIER_FULL],
      ['dossier-minimal.json', DOSSIER_MINIMAL],
      ['hits-council-housing.json', HITS_COUNCIL_HOUSING],
    ] as const) {
      const original = JSON.parse(readFileSync(`${CONTRACT_DIR}/${name}`, 'utf8')) as unknown;
      expect(original).toEqual(JSON.parse(copy));
    }
    validateDossier(JSON.parse(readFileSync(`${CONTRACT_DIR}/dossier-full.json`, 'utf8')));
    validateDossier(JSON.parse(readFileSync(`${CONTRACT_DIR}/dossier-minimal.json`, 'utf8')));
    validateHits(JSON.parse(readFileSync(`${CONTRACT_DIR}/hits-council-housing.json`, 'utf8')));
  });

  it('accepts optional fields the examples do not use', () => {
    const d = full();
    d.requests.peers = ['staffordshire'];
    d.subjects[0].addresses[0].line2 = 'Foleshill';
    d.subjects[0].addresses[0].county = 'West Midlands';
    d.subjects[0].addresses[0].to = '2026-01-31';
    d.subjects[0].identifiers.passport = '123456789';
    d.subjects[0].gender = 'unknown';
    d.subjects[1].vehicles[0].relationship = 'passenger';
    d.subjects[2].role = 'victim';
    d.subjects[3].role = 'witness';
    d.locations[0].county = 'West Midlands';
    d.subjects[0].intelligence[0].sourceType = 'open-source';
    d.subjects[0].intelligence[0].grading = { source: 3, intelligence: 'E', handling: 'P' };
    expect(() => validateDossier(d)).not.toThrow();
  });
});

describe('dossier schema: rejections with the right code and path', () => {
  it('reports a missing required top-level property at its own path', () => {
    const d = full();
    delete d.reference;
    expectViolation(() => validateDossier(d), '/reference', 'is required');
  });

  it('reports missing nested required properties', () => {
    const d = full();
    delete d.subjects[1].name.family;
    delete d.subjects[0].addresses[1].postcode;
    delete d.subjects[0].intelligence[0].grading.intelligence;
    const err = expectViolation(() => validateDossier(d), '/subjects/1/name/family', 'is required');
    const paths = err.details!.map((x) => x.path);
    expect(paths).toContain('/subjects/0/addresses/1/postcode');
    expect(paths).toContain('/subjects/0/intelligence/0/grading/intelligence');
  });

  it('reports every violation, not only the first', () => {
    const d = full();
    d.subjects[0].dateOfBirth = 'yesterday';
    d.subjects[2].nationality = 'Romania';
    d.purpose = '';
    const err = failure(() => validateDossier(d));
    expect(err.details!.map((x) => x.path)).toEqual(
      expect.arrayContaining(['/subjects/0/dateOfBirth', '/subjects/2/nationality', '/purpose']),
    );
  });

  it('requires at least one subject', () => {
    const d = minimal();
    d.subjects = [];
    expectViolation(() => validateDossier(d), '/subjects', 'must NOT have fewer than 1 items');
  });

  it('rejects wrong types', () => {
    const d = full();
    d.subjects[0].intelligence[0].grading.source = '2';
    expectViolation(() => validateDossier(d), '/subjects/0/intelligence/0/grading/source', 'must be integer');
    const e = full();
    e.subjects[0].phones = '07700 900123';
    expectViolation(() => validateDossier(e), '/subjects/0/phones', 'must be array');
    const f = minimal();
    f.handling = 'P';
    expectViolation(() => validateDossier(f), '/handling', 'must be object');
  });

  it('rejects a 5x5x5-style grading and grades outside 3x5x2', () => {
    const d = full();
    d.subjects[0].intelligence[0].grading = 'B2';
    expectViolation(() => validateDossier(d), '/subjects/0/intelligence/0/grading', 'must be object');
    const e = full();
    e.subjects[0].intelligence[0].grading.source = 4;
    e.subjects[0].intelligence[1].grading.intelligence = 'F';
    const err = expectViolation(() => validateDossier(e), '/subjects/0/intelligence/0/grading/source');
    expect(err.details!.map((x) => x.path)).toContain('/subjects/0/intelligence/1/grading/intelligence');
  });

  it('rejects extra properties, naming them in the path', () => {
    const d = full();
    d.subjects[0].shoeSize = 10;
    d.notes = 'extra';
    d.subjects[0].addresses[0].uprn = '100070000001';
    const err = expectViolation(() => validateDossier(d), '/subjects/0/shoeSize', 'is not an allowed property');
    const paths = err.details!.map((x) => x.path);
    expect(paths).toContain('/notes');
    expect(paths).toContain('/subjects/0/addresses/0/uprn');
  });

  it('escapes odd property names in the JSON Pointer', () => {
    const d = minimal();
    d['a/b~c'] = 1;
    expectViolation(() => validateDossier(d), '/a~1b~0c', 'is not an allowed property');
  });

  it('rejects strings that are too long', () => {
    const d = full();
    d.purpose = 'x'.repeat(1001);
    expectViolation(() => validateDossier(d), '/purpose', 'must NOT have more than 1000 characters');
    const e = full();
    e.subjects[0].intelligence[0].summary = 'y'.repeat(2001);
    expectViolation(() => validateDossier(e), '/subjects/0/intelligence/0/summary', /more than 2000 characters/);
  });

  it('rejects arrays with too many items', () => {
    const d = minimal();
    d.subjects = Array.from({ length: 201 }, (_, i) => ({ id: `S${i}`, role: 'member', name: { given: 'A', family: 'B' } }));
    expectViolation(() => validateDossier(d), '/subjects', 'must NOT have more than 200 items');
    const e = full();
    e.subjects[0].phones = Array.from({ length: 21 }, (_, i) => `07700 900${String(i).padStart(3, '0')}`);
    expectViolation(() => validateDossier(e), '/subjects/0/phones', 'must NOT have more than 20 items');
  });

  it('accepts exactly 200 subjects', () => {
    const d = minimal();
    d.subjects = Array.from({ length: 200 }, (_, i) => ({ id: `S${i}`, role: 'member', name: { given: 'A', family: 'B' } }));
    expect(() => validateDossier(d)).not.toThrow();
  });

  it.each([['1987-13-01'], ['1987-02-30'], ['12/04/1987'], ['1987-4-12'], ['1987-04-12T00:00:00Z']])(
    'rejects the date of birth %s',
    (dob) => {
      const d = full();
      d.subjects[0].dateOfBirth = dob;
      expectViolation(() => validateDossier(d), '/subjects/0/dateOfBirth', /must match format "date"|must NOT have more than/);
    },
  );

  it('reports a bad date with the ajv format message', () => {
    const d = full();
    d.subjects[0].dateOfBirth = '1987-13-01';
    expectViolation(() => validateDossier(d), '/subjects/0/dateOfBirth', 'must match format "date"');
  });

  it('rejects a createdAt that is not an RFC 3339 date-time', () => {
    const d = minimal();
    d.createdAt = '2026-11-21 08:00';
    expectViolation(() => validateDossier(d), '/createdAt', 'must match format "date-time"');
    d.createdAt = '2026-11-21T08:00:00'; // no offset
    expectViolation(() => validateDossier(d), '/createdAt', 'must match format "date-time"');
  });

  it.each([['cv6 5hx'], ['CV6  5HX'], ['12345'], ['CV6 5HXX']])('rejects the postcode %s', (postcode) => {
    const d = full();
    d.subjects[0].addresses[0].postcode = postcode;
    expectViolation(() => validateDossier(d), '/subjects/0/addresses/0/postcode');
  });

  it('rejects bad identifiers, nationality, VRM, sort code and email', () => {
    const d = full();
    d.subjects[0].nationality = 'gb';
    d.subjects[0].identifiers.niNumber = 'QQ 12 34 56 C';
    d.subjects[0].identifiers.pnc = '123456';
    d.subjects[0].vehicles[0].vrm = 'ab12 cde';
    d.subjects[0].bankAccounts[0].sortCode = '123456789';
    d.subjects[0].emails[0] = 'not an email';
    d.subjects[0].id = 'S 1';
    const err = failure(() => validateDossier(d));
    expect(err.code).toBe('schema_violation');
    expect(err.details!.map((x) => x.path)).toEqual(
      expect.arrayContaining([
        '/subjects/0/nationality',
        '/subjects/0/identifiers/niNumber',
        '/subjects/0/identifiers/pnc',
        '/subjects/0/vehicles/0/vrm',
        '/subjects/0/bankAccounts/0/sortCode',
        '/subjects/0/emails/0',
        '/subjects/0/id',
      ]),
    );
  });

  it('rejects values outside the enumerations', () => {
    const d = full();
    d.subjects[0].role = 'suspect';
    d.group.threatBand = 'F';
    d.subjects[0].vehicles[0].relationship = 'thief';
    d.requests.checks = ['everything'];
    d.subjects[0].intelligence[0].sourceType = 'rumour';
    const err = failure(() => validateDossier(d));
    expect(err.details!.map((x) => x.path)).toEqual(
      expect.arrayContaining([
        '/subjects/0/role',
        '/group/threatBand',
        '/subjects/0/vehicles/0/relationship',
        '/requests/checks/0',
        '/subjects/0/intelligence/0/sourceType',
      ]),
    );
  });

  it('rejects a wrong schema identifier', () => {
    const d = minimal();
    d.schema = 'cordon.dossier/v2';
    expectViolation(() => validateDossier(d), '/schema', 'must be equal to constant');
  });

  it('requires conditions when the handling code is C', () => {
    const d = minimal();
    d.handling = { code: 'C' };
    const err = expectViolation(() => validateDossier(d), '/handling/conditions', 'is required');
    expect(err.details!.map((x) => x.path)).not.toContain('/handling'); // the noisy `if` error is dropped
    d.handling = { code: 'C', conditions: 'Safeguarding only' };
    expect(() => validateDossier(d)).not.toThrow();
  });

  it('requires handlingConditions on intelligence graded with handling code C', () => {
    const d = full();
    delete d.subjects[0].intelligence[1].handlingConditions;
    expectViolation(() => validateDossier(d), '/subjects/0/intelligence/1/handlingConditions', 'is required');
  });

  it('rejects control characters in text fields', () => {
    const d = full();
    d.subjects[0].name.given = 'Daniel\u001b[31m';
    d.purpose = 'line one\u0000';
    const err = expectViolation(() => validateDossier(d), '/subjects/0/name/given');
    expect(err.details!.map((x) => x.path)).toContain('/purpose');
    const ok = full();
    ok.purpose = 'line one\nline two';
    expect(() => validateDossier(ok)).not.toThrow();
  });

  it('rejects duplicate subject ids', () => {
    const d = full();
    d.subjects[3].id = 'S1';
    expectViolation(() => validateDossier(d), '/subjects/3/id', 'duplicates the id of /subjects/0');
  });

  it('rejects associates that name no subject of the dossier, or the subject itself', () => {
    const d = full();
    d.subjects[0].associates[0].subject = 'S9';
    d.subjects[1].associates[0].subject = 'S2';
    const err = expectViolation(() => validateDossier(d), '/subjects/0/associates/0/subject', 'must be the id of a subject in this dossier');
    expect(err.details!.map((x) => x.path)).toContain('/subjects/1/associates/0/subject');
  });

  it('caps the number of details', () => {
    const d = minimal();
    d.subjects = Array.from({ length: 200 }, () => ({ id: 'bad id', role: 'nobody', name: {} }));
    const err = failure(() => validateDossier(d));
    expect(err.code).toBe('schema_violation');
    expect(err.details!.length).toBe(50);
    expect(err.details!.at(-1)!.message).toMatch(/more violations not shown/);
  });
});

describe('dossier schema: classification is refused before anything else', () => {
  it.each([['SECRET'], ['TOP SECRET'], ['secret'], ['OFFICIAL SENSITIVE'], ['official'], [''], [3], [null], [['OFFICIAL']]])(
    'refuses classification %j',
    (classification) => {
      const d = full();
      d.classification = classification;
      const err = failure(() => validateDossier(d));
      expect(err.code).toBe('classification_refused');
      expect(err.message).toBe(
        'Cordon handles OFFICIAL and OFFICIAL-SENSITIVE material only; SECRET and above must not be sent to it',
      );
      expect(err.details).toEqual([expect.objectContaining({ path: '/classification' })]);
    },
  );

  it('refuses SECRET even when the rest of the dossier is also invalid', () => {
    const d = full();
    d.classification = 'SECRET';
    d.extra = true;
    delete d.subjects;
    expect(failure(() => validateDossier(d)).code).toBe('classification_refused');
  });

  it('treats a missing classification as a schema violation', () => {
    const d = minimal();
    delete d.classification;
    expectViolation(() => validateDossier(d), '/classification', 'is required');
  });

  it('accepts both allowed classifications', () => {
    for (const classification of ['OFFICIAL', 'OFFICIAL-SENSITIVE']) {
      const d = minimal();
      d.classification = classification;
      expect(() => validateDossier(d)).not.toThrow();
    }
  });
});

describe('dossier schema: prototype keys and body shape', () => {
  it('rejects a top-level __proto__ key (from JSON.parse) and does not pollute prototypes', () => {
    const d = JSON.parse(DOSSIER_MINIMAL.replace('{', '{"__proto__": {"polluted": true},')) as Json;
    expect(Object.hasOwn(d, '__proto__')).toBe(true);
    const err = expectViolation(() => validateDossier(d), '/__proto__', 'property name "__proto__" is not allowed');
    expect(err.details!.filter((x) => x.path === '/__proto__')).toHaveLength(1);
    expect(({} as Json).polluted).toBeUndefined();
  });

  it('rejects a nested __proto__ key', () => {
    const d = JSON.parse(DOSSIER_MINIMAL.replace('"given": "Lee"', '"__proto__": {"isAdmin": true}, "given": "Lee"')) as Json;
    expectViolation(() => validateDossier(d), '/subjects/0/name/__proto__', 'property name "__proto__" is not allowed');
  });

  it('rejects constructor and prototype keys anywhere', () => {
    const d = minimal();
    d.subjects[0].constructor = { prototype: {} };
    d.originator.prototype = 'x';
    const err = expectViolation(() => validateDossier(d), '/subjects/0/constructor', 'property name "constructor" is not allowed');
    expect(err.details!.map((x) => x.path)).toContain('/originator/prototype');
  });

  it.each([[null], [undefined], [[]], ['{"schema":"cordon.dossier/v1"}'], [42], [true]])('rejects the non-object body %j', (body) => {
    const err = expectViolation(() => validateDossier(body), '', 'must be a JSON object');
    expect(err.message).toBe('The dossier does not match the schema');
  });

  it('rejects absurd nesting without overflowing the stack', () => {
    let deep: Json = {};
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    const d = minimal();
    d.subjects[0].name.aliases = [deep];
    const err = failure(() => validateDossier(d));
    expect(err.code).toBe('schema_violation');
    expect(err.details!.some((x) => x.keyword === 'maxDepth')).toBe(true);
  });
});

describe('hits schema', () => {
  it('accepts the council housing example with its placeholders as they are', () => {
    const body = hits();
    const result = validateHits(body);
    expect(result.packet).toBe('<the packet id the partner received>');
    expect(result.hits).toHaveLength(2);
    expect(result.hits[1]?.detail.occupants).toBe(9);
  });

  it('accepts null and boolean detail values and a hit without partnerRecordRef', () => {
    const h = hits();
    h.hits[0].detail.endDate = null;
    h.hits[0].detail.current = true;
    delete h.hits[1].partnerRecordRef;
    expect(() => validateHits(h)).not.toThrow();
  });

  it.each([
    ['wrong schema id', (h: Json) => (h.schema = 'cordon.dossier/v1'), '/schema'],
    ['missing packet', (h: Json) => delete h.packet, '/packet'],
    ['no hits', (h: Json) => (h.hits = []), '/hits'],
    ['501 hits', (h: Json) => (h.hits = Array.from({ length: 501 }, () => h.hits[0])), '/hits'],
    ['unknown kind', (h: Json) => (h.hits[0].kind = 'pizza'), '/hits/0/kind'],
    ['nested object in detail', (h: Json) => (h.hits[0].detail.address = { line1: 'x' }), '/hits/0/detail/address'],
    ['array in detail', (h: Json) => (h.hits[0].detail.names = ['a']), '/hits/0/detail/names'],
    ['detail value too long', (h: Json) => (h.hits[0].detail.note = 'n'.repeat(501)), '/hits/0/detail/note'],
    ['detail key too long', (h: Json) => (h.hits[0].detail['k'.repeat(65)] = 1), `/hits/0/detail/${'k'.repeat(65)}`],
    ['detail key with odd characters', (h: Json) => (h.hits[0].detail['a b'] = 1), '/hits/0/detail/a b'],
    ['too many detail properties', (h: Json) => { for (let i = 0; i < 31; i++) h.hits[0].detail[`f${i}`] = i; }, '/hits/0/detail'],
    ['detail not an object', (h: Json) => (h.hits[0].detail = 'x'), '/hits/0/detail'],
    ['too many matchedOn', (h: Json) => (h.hits[0].matchedOn = Array.from({ length: 11 }, (_, i) => `f${i}`)), '/hits/0/matchedOn'],
    ['matchedOn not strings', (h: Json) => (h.hits[0].matchedOn = [1]), '/hits/0/matchedOn/0'],
    ['bad confidence', (h: Json) => (h.hits[0].confidence = 'sure'), '/hits/0/confidence'],
    ['partnerRecordRef too long', (h: Json) => (h.hits[0].partnerRecordRef = 'r'.repeat(101)), '/hits/0/partnerRecordRef'],
    ['missing subject', (h: Json) => delete h.hits[1].subject, '/hits/1/subject'],
    ['extra property in a hit', (h: Json) => (h.hits[0].score = 0.9), '/hits/0/score'],
    ['extra top-level property', (h: Json) => (h.note = 'x'), '/note'],
  ])('rejects %s', (_name, mutate, path) => {
    const h = hits();
    mutate(h);
    expectViolation(() => validateHits(h), path);
  });

  it('uses its own message', () => {
    const err = failure(() => validateHits({}));
    expect(err.code).toBe('schema_violation');
    expect(err.message).toBe('The hits submission does not match the schema');
  });

  it('rejects __proto__ and constructor keys inside detail', () => {
    const h = JSON.parse(HITS_COUNCIL_HOUSING.replace('"tenure": "council"', '"__proto__": "x", "tenure": "council"')) as Json;
    expectViolation(() => validateHits(h), '/hits/0/detail/__proto__', 'property name "__proto__" is not allowed');
    const c = hits();
    c.hits[1].detail.constructor = 'x';
    expectViolation(() => validateHits(c), '/hits/1/detail/constructor', 'property name "constructor" is not allowed');
  });

  it.each([[null], [[]], ['text']])('rejects the non-object body %j', (body) => {
    expectViolation(() => validateHits(body), '', 'must be a JSON object');
  });
});

describe('schemaLeafPaths', () => {
  const paths = schemaLeafPaths();
  const byPath = new Map(paths.map((p) => [p.path, p]));

  it('lists leaves with their kinds', () => {
    expect(byPath.get('subjects[].addresses[].postcode')).toEqual({ path: 'subjects[].addresses[].postcode', type: 'string', kind: 'postcode' });
    expect(byPath.get('subjects[].dateOfBirth')).toMatchObject({ type: 'string', kind: 'date' });
    expect(byPath.get('createdAt')).toMatchObject({ type: 'string', kind: 'datetime' });
    expect(byPath.get('subjects[].id')).toMatchObject({ type: 'string', kind: 'subjectId' });
    expect(byPath.get('subjects[].associates[].subject')).toMatchObject({ type: 'string', kind: 'subjectRef' });
    expect(byPath.get('subjects[].vehicles[].vrm')).toMatchObject({ type: 'string', kind: 'vrm' });
    expect(byPath.get('subjects[].intelligence[].grading.source')).toMatchObject({ type: 'integer', enum: [1, 2, 3] });
    expect(byPath.get('subjects[].role')?.enum).toContain('potential-victim');
  });

  it('lists containers', () => {
    expect(byPath.get('subjects[].intelligence[]')).toEqual({ path: 'subjects[].intelligence[]', type: 'array-of-objects' });
    expect(byPath.get('subjects[]')?.type).toBe('array-of-objects');
    expect(byPath.get('subjects[].name')?.type).toBe('object');
    expect(byPath.get('subjects[].intelligence[].grading')?.type).toBe('object');
    expect(byPath.get('subjects[].phones[]')).toMatchObject({ type: 'array-of-scalars', kind: 'phone' });
    expect(byPath.get('subjects[].vulnerabilities[]')?.type).toBe('array-of-scalars');
    expect(byPath.get('requests.checks[]')?.enum).toContain('tenancies');
  });

  it('uses one spelling per path: arrays always end in []', () => {
    expect(byPath.has('subjects[].phones')).toBe(false);
    expect(byPath.has('subjects')).toBe(false);
    expect(new Set(paths.map((p) => p.path)).size).toBe(paths.length);
    expect(findSchemaPath('subjects[].addresses[].postcode')?.kind).toBe('postcode');
    expect(findSchemaPath('subjects[].addresses[].uprn')).toBeUndefined();
  });

  it('covers every path that occurs in the full example', () => {
    const seen = new Set<string>();
    const visit = (value: unknown, path: string): void => {
      if (Array.isArray(value)) {
        seen.add(`${path}[]`);
        for (const item of value) visit(item, `${path}[]`);
      } else if (value !== null && typeof value === 'object') {
        if (path !== '') seen.add(path);
        for (const [k, v] of Object.entries(value)) visit(v, path === '' ? k : `${path}.${k}`);
      } else if (!path.endsWith('[]')) {
        seen.add(path);
      }
    };
    visit(full(), '');
    for (const path of seen) expect(byPath.has(path), path).toBe(true);
  });

  it('returns copies that callers cannot use to change the index', () => {
    const first = schemaLeafPaths();
    first[0]!.path = 'changed';
    expect(schemaLeafPaths()[0]!.path).not.toBe('changed');
  });

  it('walks the hits schema too', () => {
    const hitPaths = walkSchema(hitsSchema).map((p) => p.path);
    expect(hitPaths).toEqual(expect.arrayContaining(['packet', 'hits[]', 'hits[].subject', 'hits[].detail', 'hits[].matchedOn[]']));
  });
});

describe('schema hygiene', () => {
  type Node = Record<string, unknown>;
  const nodes = (schema: Node): Array<{ node: Node; at: string }> => {
    const out: Array<{ node: Node; at: string }> = [];
    const visit = (node: unknown, at: string): void => {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
      out.push({ node: node as Node, at });
      for (const [k, v] of Object.entries(node)) {
        if (k === 'enum' || k === 'const' || k === 'required') continue;
        if (k === 'properties') for (const [p, s] of Object.entries(v as Node)) visit(s, `${at}/properties/${p}`);
        else visit(v, `${at}/${k}`);
      }
    };
    visit(schema, '#');
    return out;
  };

  for (const [name, schema] of [
    ['dossier', dossierSchema],
    ['hits', hitsSchema],
  ] as const) {
    const all = nodes(schema as Node);

    it(`${name}: is a 2020-12 schema with its $id and no $ref`, () => {
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.$id).toBe(`https://cordon.example/schemas/${name}.schema.json`);
      expect(JSON.stringify(schema)).not.toContain('"$ref":');
    });

    it(`${name}: closes every object, bounds every string and array`, () => {
      for (const { node, at } of all) {
        if (node.type === 'object' && !at.includes('/if')) {
          expect(node.additionalProperties === false || node.maxProperties !== undefined, at).toBe(true);
        }
        if (node.type === 'array') expect(typeof node.maxItems, at).toBe('number');
        const types = Array.isArray(node.type) ? node.type : [node.type];
        if (types.includes('string')) expect(typeof node.maxLength, at).toBe('number');
      }
    });

    it(`${name}: has ReDoS-safe patterns`, () => {
      const patterns = all.map(({ node }) => node.pattern).filter((p): p is string => typeof p === 'string');
      expect(patterns.length).toBeGreaterThan(0);
      for (const pattern of patterns) {
        // no quantified group that itself contains a quantifier, e.g. (a+)+ or (?:[a-z]{1,3})*
        expect(/\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]/.test(pattern), pattern).toBe(false);
        const re = new RegExp(pattern, 'u');
        for (const ch of ['a', 'A', '0', ' ', '-', '/', '\u0001']) {
          const start = performance.now();
          re.test(ch.repeat(50_000) + '!');
          // Catastrophic backtracking on 50,000 characters takes minutes; a loaded CI machine takes milliseconds.
          expect(performance.now() - start, `${pattern} on ${JSON.stringify(ch)}`).toBeLessThan(2000);
        }
      }
    });
  }
});
