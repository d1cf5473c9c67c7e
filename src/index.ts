// Public API of the platform-neutral core. Node-only helpers live under `macslot/node`.

// The platform types the declarations name, for projects without the DOM library (no code at run time).
export type {} from './platform.js';

export { MacslotError, isMacslotError, type MacslotErrorCode } from './errors.js';
export {
  Mac,
  BROADCAST,
  ETH_GROUP_BIT,
  ETH_LOCAL_BIT,
  parseMac,
  formatMac,
  isMulticastEtherAddr,
  isBroadcastEtherAddr,
  isUnicastEtherAddr,
  isLocalEtherAddr,
  isZeroEtherAddr,
  isValidEtherAddr,
  type MacKind,
  type MacLike,
  type MacNotation,
} from './wire/mac.js';
export * from './wire/ethernet.js';
export {
  MacBlock,
  ethRandomAddr,
  randomAddr,
  cryptoRandom,
  type MacBlockSpec,
  type RandomSource,
  type TakenSet,
} from './alloc/generate.js';
export { Nic, NicClient, type NicChange } from './nic/nic.js';
export type {
  AddressKind,
  AddressSupport,
  ClientOptions,
  GroupStage,
  NicConfig,
  NicEvent,
  NicMode,
  OverflowPolicy,
  Placement,
  PromiscReason,
  Reservation,
  SlotInfo,
} from './nic/types.js';
export { HASH_BITS, mtaIndex } from './filter/hash.js';
export type { FilterState, GroupEntry, UnicastEntry } from './filter/state.js';
export { RULES, classifyFrame, classifyKey, type Path, type Rule, type Verdict } from './filter/reference.js';
export {
  DataPlane,
  type ClientCounters,
  type DataPlaneCounters,
  type DataPlaneEvent,
  type DataPlaneHandle,
  type DataPlaneOptions,
} from './dataplane/dataplane.js';
export { RxBatch, RxRing } from './dataplane/ring.js';
export { VERDICT_NO_REF, verdictDrops, verdictPath, verdictRef, verdictRule, verdictRuleId } from './dataplane/verdict.js';
export { compileDataPlane, wasmBytes, type Build } from './dataplane/module.js';

// ---- Capture files and the configuration file ----
export {
  LINKTYPE_ETHERNET,
  MAX_RECORD,
  MAX_BLOCK,
  MAX_INTERFACES,
  PCAP_MAX_SECONDS,
  PCAPNG_MAX_SECONDS,
  type CaptureFormat,
} from './capture/format.js';
export { FrameBatch, type FrameBatchOptions } from './capture/batch.js';
export { CaptureFanout, type CaptureFanoutOptions } from './capture/fanout.js';
export { CaptureReader, scanCapture, type CaptureSummary } from './capture/reader.js';
export { CaptureWriter, type CaptureWriterOptions } from './capture/writer.js';
export {
  parseConfig,
  parseConfigText,
  loadConfig,
  buildFromConfig,
  seededRandom,
  CONFIG_PATTERNS,
  type MacslotConfig,
  type NicFileConfig,
  type ClientFileConfig,
  type ConfiguredNic,
} from './config/config.js';
export { LIMITS } from './limits.js';

// ---- The MAC manager and its stores ----
export {
  MacManager,
  LAPSE_GRACE_MS,
  type SetTimer,
  type AllocateRequest,
  type AllocationPolicy,
  type GuestUsage,
  type Lease,
  type LeasePolicy,
  type MacManagerOptions,
  type Quota,
  type StoreConflict,
} from './manager/manager.js';
export {
  MemoryStore,
  DocumentStore,
  recordLapsed,
  STORE_VERSION,
  emptyStoreData,
  parseStoreData,
  serializeStoreData,
  type DisplacedRecord,
  type MacRecord,
  type MacStore,
  type RecordPolicy,
  type StoreData,
  type RecordStore,
  type ClaimRequest,
  type NewClaimRequest,
  type MacIdentity,
  type StoredRecord,
} from './manager/store.js';
export {
  BrowserStore,
  type BrowserBackend,
  type BrowserStoreOptions,
  type LockManagerLike,
  type StorageLike,
} from './manager/browser-store.js';
export { deriveMac, deriveKey } from './manager/derive.js';
export { sipHash24 } from './manager/siphash.js';

// ---- Emulator adapters: v86 ----
export {
  attachV86,
  type V86AttachOptions,
  type V86Attachment,
  type V86Bus,
  type V86Counters,
  type V86Event,
  type V86GuestDrop,
  type V86HostDrop,
  type V86Like,
  type V86Traffic,
} from './adapters/v86.js';

// ---- Frame ports, their middleware, and the switch ----
export {
  DropCounter,
  Inlet,
  PortBase,
  QueueBudget,
  QueueShare,
  DEFAULT_QUEUE_BUDGET,
  ioBegin,
  ioEnd,
  type FramePort,
  type PortCloseReason,
} from './port/port.js';
export { escapeText, isPrintable, ESCAPE_MAX } from './text.js';
export { FrameDecoder, encodeFrame, QEMU_FRAMING, QEMU_MAX_FRAME, VDE_FRAMING, VDE_MAX_FRAME, type StreamFraming } from './port/framing.js';
export { memoryPortPair } from './port/memory.js';
export {
  PcapngTap,
  tapPort,
  tracePort,
  faultPort,
  learnMacPort,
  describeFrame,
  type PcapngTapOptions,
  type FaultOptions,
  type FaultCounts,
  type FaultyPort,
  type LearnOptions,
} from './port/middleware.js';
export {
  bindClient,
  bindUplink,
  setSwitchVlans,
  type BindClientOptions,
  type BindUplinkOptions,
  type ClientBinding,
  type FlowCounters,
  type PortBinding,
  type PortCounters,
  type StormControl,
} from './switch/fabric.js';
export {
  Switch,
  DEFAULT_STORM_CONTROL,
  type SwitchClientSpec,
  type SwitchCounters,
  type SwitchOptions,
  type SwitchVlans,
  type SwitchPort,
  type SwitchPortInfo,
} from './switch/switch.js';
export {
  GuestUplinks,
  resolveGuestNetwork,
  type GuestNetwork,
  type GuestUplinkHandle,
  type GuestUplinkInfo,
  type GuestUplinkRequest,
  type GuestUplinkStarter,
  type GuestUplinkState,
  type GuestUplinksOptions,
  type ResolvedGuestNetwork,
} from './switch/uplinks.js';

// ---- Device profiles: the receive filters of real NICs, for emulators ----
export { DEVICE_REASONS, deviceVerdict, deviceVerdictAccepts, type DeviceReason, type DeviceVerdict } from './device/reasons.js';
export { DeviceFilter } from './device/engine.js';
export { etherCrc, marIndex, mtaVector, packRal, packRah, unpackRar } from './device/hash.js';
export { E1000, E1000_RAH_AV, E1000_RAR_COUNT, E1000_RCTL, E1000_REGISTERS, type E1000Options } from './device/e1000.js';
export { Ixgbe, IXGBE_BITS, IXGBE_RAH_AV, IXGBE_RAR_COUNT, IXGBE_REGISTERS, type IxgbeOptions } from './device/ixgbe.js';
export { Ne2k, NE2K_BITS, NE2K_REGISTERS, type Ne2kOptions } from './device/ne2k.js';
export {
  VirtioNet,
  VIRTIO_NET_CTRL,
  VIRTIO_NET_ERR,
  VIRTIO_NET_MAC_TABLE_ENTRIES,
  VIRTIO_NET_OK,
  type VirtioMacTable,
  type VirtioNetFeatures,
  type VirtioNetOptions,
  type VirtioRxMode,
} from './device/virtio-net.js';

// ---- VLANs ----
export {
  TPID_8021AD,
  TPID_8021Q,
  VLAN_ETH_HLEN,
  VLAN_HLEN,
  checkVid,
  insertTag,
  parseVlan,
  stripTag,
  type VlanHeader,
  type VlanTag,
} from './vlan/tag.js';
export {
  VlanMembership,
  type PortVlans,
  type VlanCounters,
  type VlanDrop,
  type VlanIngress,
  type VlanPortView,
  type VlanProtocol,
} from './vlan/membership.js';
export { classifyVlanFrame, vlanEgressFrame, type VlanVerdict } from './filter/vlan.js';
