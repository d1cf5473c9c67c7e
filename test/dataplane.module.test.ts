// The embedded Wasm modules: the release size budget, the single memory import, and the exact export surface of assembly/index.ts.
import { describe, expect, it } from 'vitest';
import { compileDataPlane, DataPlane, MacslotError, Nic, wasmBytes } from 'macslot';
import { compileDebugDataPlane, debugWasmBytes } from 'macslot/debug';

// Every function assembly/index.ts exports, by file, and the generated layout exports; anything else exported is surface
// nobody reviewed.
const FUNCTIONS = [
  'plan',
  'attach',
  'bankPtr',
  'lanePtr',
  'laneCountersPtr',
  'descriptorsPtr',
  'verdictsPtr',
  'keysPtr',
  'kindsPtr',
  'poolPtr',
  'clientCountersPtr',
  'ringPtr',
  'stagingPtr',
  'activeBank',
  'bankBytes',
  'filterBytes',
  'tableSlots',
  'tablePut',
  'tableLoad',
  'stagedRecords',
  'tableDelete',
  'tableTombs',
  'tableTidy',
  'bankSetFlags',
  'bankSetClient',
  'bankSetMember',
  'bankClearGroup',
  'bankSetHashBit',
  'bankSetVlan',
  'bankReset',
  'bankCopy',
  'publish',
  'readersOn',
  'claimLane',
  'releaseLane',
  'ownsLane',
  'laneState',
  'reclaimLane',
  'setHold',
  'ringResetsPtr',
  'clientReset',
  'claimDelivery',
  'releaseDelivery',
  'classifyBurst',
  'classifyKeys',
  'rxBurst',
  'ruleCount',
  'laneCounterCount',
  'counterStripes',
  'bankBroadcastPtr',
  'bankPromiscPtr',
  'bankGroupPtr',
  'bankVlanPtr',
  'ringDataBytes',
  'poolBytesPerLane',
  'clientCapacity',
  'laneCount',
  'pinsPtr',
  'poolLineCount',
  'ringSlots',
  'poolAlloc',
  'ringDiscard',
  'layoutCount',
  'layoutValue',
];
// The compiler re-exports the imported memory; it is the same object the host passed in.
const EXPORTS = [...FUNCTIONS.map((name) => ({ name, kind: 'function' })), { name: 'memory', kind: 'memory' }].sort((a, b) =>
  a.name.localeCompare(b.name),
);

const BUILDS: {
  name: string;
  bytes: () => Uint8Array<ArrayBuffer>;
  compile: () => Promise<WebAssembly.Module>;
  shared: boolean;
  budget: number;
}[] = [
  { name: 'release', bytes: () => wasmBytes('release'), compile: () => compileDataPlane('release'), shared: true, budget: 32 * 1024 },
  {
    name: 'release-unshared',
    bytes: () => wasmBytes('release-unshared'),
    compile: () => compileDataPlane('release-unshared'),
    shared: false,
    budget: 32 * 1024,
  },
  // Debug (from macslot/debug) keeps assertions and names; it only has to stay loadable, so its budget is loose.
  { name: 'debug', bytes: debugWasmBytes, compile: compileDebugDataPlane, shared: true, budget: 256 * 1024 },
];

describe('embedded modules', () => {
  it('the release .wasm is at most 32 KiB', () => {
    expect(wasmBytes('release').length).toBeLessThanOrEqual(32 * 1024);
  });

  it('wasmBytes defaults to the release build', () => {
    expect(wasmBytes()).toEqual(wasmBytes('release'));
  });

  it.each(BUILDS)(
    '$name: compiles, fits its budget, imports only env.memory, exports exactly the reviewed surface',
    async ({ bytes: read, compile, shared, budget }) => {
      const bytes = read();
      expect(bytes.length).toBeLessThanOrEqual(budget);
      expect(WebAssembly.validate(bytes)).toBe(true);
      const module = await compile();
      expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      expect(
        WebAssembly.Module.exports(module)
          .map(({ name, kind }) => ({ name, kind }))
          .sort((a, b) => a.name.localeCompare(b.name)),
      ).toEqual(EXPORTS);
      // The memory's shared flag must match the module's declaration; the wrong one is a LinkError.
      expect(
        () => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared }) } }),
      ).not.toThrow();
      expect(
        () => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: !shared }) } }),
      ).toThrow(WebAssembly.LinkError);
    },
  );

  it.each(BUILDS)('$name: compiles once and is cached', async ({ compile }) => {
    expect(await compile()).toBe(await compile());
  });
});

// ---- the layout contract -------------------------------------------------------------

const leb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Buffer.from(s)];
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];

/**
 * A module that imports a shared memory as the data plane does and answers layoutCount/layoutValue with `values` (or
 * exports nothing when `values` is null): a data plane built from another assembly/layout.ts, as far as the check sees.
 */
function layoutModule(values: number[] | null, count = values?.length ?? 0): Promise<WebAssembly.Module> {
  const memory = [...name('env'), ...name('memory'), 0x02, 0x03, ...leb(1), 0x80, 0x80, 0x01];
  const parts = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (values === null) return WebAssembly.compile(new Uint8Array([...parts, ...section(2, vec([memory]))]));
  const types = vec([
    [0x60, 0x00, 0x01, 0x7f],
    [0x60, 0x01, 0x7f, 0x01, 0x7f],
  ]);
  const exports = vec([
    [...name('layoutCount'), 0x00, 0x00],
    [...name('layoutValue'), 0x00, 0x01],
  ]);
  const countBody = [0x00, 0x41, ...leb(count), 0x0b];
  // if (i == k) return v; ... return 0
  const valueBody = [
    0x00,
    ...values.flatMap((v, k) => [0x20, 0x00, 0x41, ...leb(k), 0x46, 0x04, 0x40, 0x41, ...leb(v | 0), 0x0f, 0x0b]),
    0x41,
    0x00,
    0x0b,
  ];
  const code = vec([
    [...leb(countBody.length), ...countBody],
    [...leb(valueBody.length), ...valueBody],
  ]);
  const bytes = [
    ...parts,
    ...section(1, types),
    ...section(2, vec([memory])),
    ...section(3, vec([[0x00], [0x01]])),
    ...section(7, exports),
    ...section(10, code),
  ];
  return WebAssembly.compile(new Uint8Array(bytes));
}

/** The layout the embedded module answers, read through its own exports. */
async function embeddedLayout(): Promise<number[]> {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const x = new WebAssembly.Instance(await compileDataPlane(), { env: { memory } }).exports as {
    layoutCount(): number;
    layoutValue(i: number): number;
  };
  return Array.from({ length: x.layoutCount() }, (_, i) => x.layoutValue(i) >>> 0);
}

const MISMATCHES: { name: string; module: (real: number[]) => Promise<WebAssembly.Module>; message: (real: number[]) => RegExp }[] = [
  { name: 'a module without layout exports', module: () => layoutModule(null), message: () => /does not export its layout/ },
  {
    name: 'a module with one constant more',
    module: (real) => layoutModule([...real, 7]),
    message: (real) => new RegExp(`has ${real.length + 1} layout constants and this library ${real.length}`),
  },
  {
    name: 'a module with the last constant changed',
    module: (real) => layoutModule(real.map((v, i) => (i === real.length - 1 ? (v + 1) >>> 0 : v))),
    message: (real) =>
      new RegExp(`layout differs from this library's: \\w+ is ${(real.at(-1)! + 1) >>> 0} in the module and ${real.at(-1)!} here`),
  },
];

describe('layout contract', () => {
  it('the embedded module answers a layout the library accepts', async () => {
    const real = await embeddedLayout();
    expect(real.length).toBeGreaterThan(50);
    const dp = await DataPlane.create(new Nic({ primary: '02:00:00:00:00:01', maxClients: 2 }), { lanes: 2 });
    dp.close();
  });

  it.each(MISMATCHES)('create refuses $name with DATA_PLANE', async ({ module, message }) => {
    const real = await embeddedLayout();
    const nic = new Nic({ primary: '02:00:00:00:00:01', maxClients: 2 });
    const err = await DataPlane.create(nic, { module: await module(real), shared: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MacslotError);
    expect(err).toMatchObject({ code: 'DATA_PLANE' });
    expect((err as Error).message).toMatch(message(real));
  });

  it.each(MISMATCHES)('attach refuses $name with DATA_PLANE before claiming a lane', async ({ module, message }) => {
    const real = await embeddedLayout();
    const dp = await DataPlane.create(new Nic({ primary: '02:00:00:00:00:01', maxClients: 2 }), { lanes: 2 });
    const handle = dp.handle();
    const err = await DataPlane.attach({ ...handle, module: await module(real) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DATA_PLANE' });
    expect((err as Error).message).toMatch(message(real));
    // The only other lane is still free.
    const worker = await DataPlane.attach(handle);
    expect(worker.lane).toBe(1);
    worker.close();
    dp.close();
  });
});
