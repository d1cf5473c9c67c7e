// Data plane: one instance of the Wasm module on a memory, with the exports the TypeScript side calls, checked against the
// generated layout mirror before anything else runs.

import { checkLayout, type LayoutExports } from './contract.js';

/** The module's exports (assembly/index.ts). */
export interface Exports {
  plan(
    clients: number,
    entries: number,
    groups: number,
    pool: number,
    burst: number,
    ring: number,
    maxFrame: number,
    lanes: number,
    seedLo: number,
    seedHi: number,
    vlans: number,
  ): number;
  attach(): number;
  descriptorsPtr(lane: number): number;
  verdictsPtr(lane: number): number;
  keysPtr(lane: number): number;
  kindsPtr(lane: number): number;
  poolPtr(lane: number): number;
  laneCountersPtr(lane: number): number;
  clientCountersPtr(): number;
  ringPtr(client: number): number;
  ringDataBytes(): number;
  stagingPtr(): number;
  activeBank(): number;
  bankBytes(): number;
  filterBytes(): number;
  tableSlots(): number;
  tablePut(bank: number, len: number, meta: number): number;
  tableLoad(bank: number, count: number): number;
  stagedRecords(): number;
  tableDelete(bank: number, len: number): number;
  tableTombs(bank: number): number;
  tableTidy(bank: number): void;
  bankSetFlags(bank: number, flags: number): void;
  bankSetClient(bank: number, client: number, broadcast: number, promiscuous: number): void;
  bankSetMember(bank: number, g: number, client: number, on: number): void;
  bankClearGroup(bank: number, g: number): void;
  bankSetHashBit(bank: number, i: number, on: number): void;
  bankCopy(from: number, to: number): void;
  bankReset(bank: number): void;
  bankBroadcastPtr(bank: number): number;
  bankPromiscPtr(bank: number): number;
  bankGroupPtr(bank: number, g: number): number;
  bankVlanPtr(bank: number): number;
  bankSetVlan(bank: number, word: number): number;
  publish(bank: number): void;
  readersOn(bank: number): number;
  claimLane(lane: number): number;
  releaseLane(lane: number): void;
  ownsLane(lane: number): number;
  laneState(lane: number): number;
  reclaimLane(lane: number): number;
  setHold(on: number): void;
  ringResetsPtr(): number;
  clientReset(client: number): void;
  claimDelivery(lane: number): number;
  releaseDelivery(lane: number): void;
  classifyBurst(lane: number, count: number): number;
  classifyKeys(lane: number, count: number): number;
  rxBurst(lane: number, count: number, exclude: number): number;
  ruleCount(): number;
  poolBytesPerLane(): number;
  clientCapacity(): number;
  laneCount(): number;
  pinsPtr(lane: number): number;
  poolLineCount(): number;
  ringSlots(): number;
  poolAlloc(lane: number, len: number, begin: number): number;
  ringDiscard(client: number, held: number): number;
}

/** Instantiates `module` on `memory`; throws DATA_PLANE when the module's layout is not this library's. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Exports {
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  checkLayout(exports as LayoutExports);
  return exports as unknown as Exports;
}
