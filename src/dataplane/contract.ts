// Data plane: the start-up check of the Wasm/TypeScript contract. The module answers the constants of assembly/layout.ts
// it was compiled with; they must equal this library's generated mirror of the same file.

import { MacslotError, show } from '../errors.js';
import { LAYOUT } from './layout.generated.js';

/** What the check needs of an instance: the two layout exports, which a module from another version may lack. */
export interface LayoutExports {
  /** How many constants the module answers. */
  layoutCount?: () => number;
  /** Constant `i`, in the order of assembly/layout.ts. */
  layoutValue?: (i: number) => number;
}

/** Throws DATA_PLANE naming the first difference when the module's layout is not this library's. */
export function checkLayout(x: LayoutExports): void {
  const { layoutCount, layoutValue } = x;
  if (typeof layoutCount !== 'function' || typeof layoutValue !== 'function') {
    throw new MacslotError(
      'DATA_PLANE',
      'the data plane module does not export its layout (layoutCount, layoutValue): it is not from this library version',
    );
  }
  const count = layoutCount();
  if (count !== LAYOUT.length) {
    throw new MacslotError(
      'DATA_PLANE',
      `the data plane module has ${show(count)} layout constants and this library ${LAYOUT.length}: they are from different versions`,
    );
  }
  LAYOUT.forEach(([name, value], i) => {
    const got = layoutValue(i) >>> 0;
    if (got !== value) {
      throw new MacslotError(
        'DATA_PLANE',
        `the data plane module's layout differs from this library's: ${name} is ${got} in the module and ${value} here`,
      );
    }
  });
}
