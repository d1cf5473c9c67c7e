// Data plane (Wasm): the module's entry. Exactly these functions are the module's exports (test/dataplane.module.test.ts
// lists them); every file below does one job.

export {
  plan, attach, bankPtr, lanePtr, laneCountersPtr, descriptorsPtr, verdictsPtr, keysPtr, kindsPtr, poolPtr, clientCountersPtr, ringPtr,
  stagingPtr, activeBank, bankBytes, filterBytes, tableSlots, ringResetsPtr, ruleCount, laneCounterCount, counterStripes,
  bankBroadcastPtr, bankPromiscPtr, bankGroupPtr, ringDataBytes, poolBytesPerLane, clientCapacity, laneCount, pinsPtr, poolLineCount,
  ringSlots, bankVlanPtr,
} from './plan';
export {
  tablePut, tableLoad, stagedRecords, tableDelete, tableTombs, tableTidy, bankSetFlags, bankSetClient, bankSetMember, bankClearGroup,
  bankSetHashBit, bankReset, bankCopy, bankSetVlan,
} from './table';
export { publish, readersOn, setHold } from './reader';
export { claimLane, releaseLane, ownsLane, laneState, reclaimLane } from './lanes';
export { classifyBurst, classifyKeys } from './classify';
export { clientReset, claimDelivery, releaseDelivery, rxBurst } from './deliver';
export { poolAlloc, ringDiscard } from './pool';
export { layoutCount, layoutValue } from './layout.generated';
