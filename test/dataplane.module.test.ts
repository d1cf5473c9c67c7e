// The embedded Wasm modules: size budget, the one import, and the exact export list.
import { describe, expect, it } from 'vitest';
import { compileDataPlane, wasmBytes } from 'macslot';

const EXPORTS = [
  'plan', 'attach', 'bankPtr', 'lanePtr', 'laneCountersPtr', 'descriptorsPtr', 'verdictsPtr', 'keysPtr', 'kindsPtr', 'poolPtr',
  'clientCountersPtr', 'ringPtr', 'stagingPtr', 'activeBank', 'tablePut', 'tableDelete', 
  'bankSetFlags', 'bankSetClient', 'bankSetMember', 'bankClearGroup', 'bankSetHashBit', 'bankCopy', 'publish', 'readersOn',
  'claimLane', 'releaseLane', 'claimDelivery', 'releaseDelivery', 'classifyBurst', 'classifyKeys', 'rxBurst', 'ruleCount',
  'laneCounterCount', 'counterStripes', 'bankBroadcastPtr', 'bankPromiscPtr', 'bankGroupPtr', 'ringDataBytes', 
  'poolBytesPerLane', 'clientCapacity', 'laneCount', 'memory',
].sort();

describe('embedded modules', () => {
  it.each([
    { name: 'release', build: 'release' as const, shared: true, budget: 32 * 1024 },
    { name: 'release-unshared', build: 'release-unshared' as const, shared: false, budget: 32 * 1024 },
    { name: 'debug', build: 'debug' as const, shared: true, budget: 256 * 1024 },
  ])('$name fits its budget and imports only its memory', async ({ build, shared, budget }) => {
    const bytes = wasmBytes(build);
    expect(bytes.length).toBeLessThanOrEqual(budget);
    const module = await compileDataPlane(build);
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(module).map((e) => e.name).sort()).toEqual(EXPORTS);
    // The memory's shared flag must match the module's, or instantiation fails with a LinkError.
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared });
    expect(() => new WebAssembly.Instance(module, { env: { memory } })).not.toThrow();
  });
});
