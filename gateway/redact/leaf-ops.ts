/** The leaf operations of a projection: one scalar transformation per operation, chosen at compile time. */
import { stableJson } from '../policy/condition.js';
import type { Operation } from '../policy/types.js';
import type { ProjectionEnv } from './disclosures.js';
import {
  band,
  dateToAgeBand,
  dateToDecade,
  dateToMonth,
  dateToYear,
  isScalar,
  mask,
  postcodeToArea,
  postcodeToDistrict,
  postcodeToSector,
  pseudonymise,
  type Scalar,
} from './values.js';

/** A scalar transformation for a leaf operation, or undefined when the operation is not a leaf one. */
export function scalarTransform(op: Operation): ((v: unknown, env: ProjectionEnv) => Scalar | undefined) | undefined {
  switch (op.op) {
    case 'keep':
      return (v) => (isScalar(v) ? v : undefined);
    case 'mask': {
      const { show, chars } = op;
      if ((show !== 'first' && show !== 'last') || !Number.isInteger(chars) || chars < 0) {
        throw new Error(`invalid mask operation ${stableJson(op)}`);
      }
      return (v) => mask(v, show, chars);
    }
    case 'pseudonymise':
      return (v, env) => pseudonymise(v, env.pseudonymKey);
    case 'generalise':
      switch (op.to) {
        case 'year':
          return (v) => dateToYear(v);
        case 'month':
          return (v) => dateToMonth(v);
        case 'decade':
          return (v) => dateToDecade(v);
        case 'ageBand':
          return (v, env) => dateToAgeBand(v, env.at);
        case 'sector':
          return (v) => postcodeToSector(v);
        case 'district':
          return (v) => postcodeToDistrict(v);
        case 'area':
          return (v) => postcodeToArea(v);
        case 'band': {
          const width = op.width;
          if (!Number.isInteger(width) || width < 1) throw new Error(`invalid band width in ${stableJson(op)}`);
          return (v) => band(v, width);
        }
        case 'town':
        case 'postcode':
          return undefined;
        default:
          throw new Error(`unknown generalisation ${stableJson(op)}`);
      }
    default:
      return undefined;
  }
}
