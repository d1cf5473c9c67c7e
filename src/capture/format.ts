// Capture files: the pcap and pcapng constants both the reader and the writers use.

/** LINKTYPE_ETHERNET: the only link type whose frames are classified. */
export const LINKTYPE_ETHERNET = 1;

/** Longest record accepted (captured bytes); anything longer is a corrupt or hostile file, not a frame. */
export const MAX_RECORD = 256 * 1024;

/** Longest pcapng block accepted: a maximal record plus generous room for its options. */
export const MAX_BLOCK = MAX_RECORD + 64 * 1024;

/** Interfaces one pcapng section may describe: an OPB names its interface in 16 bits, and the cap keeps a reader's memory constant. */
export const MAX_INTERFACES = 65_536;

/** Latest timestamp, in whole seconds, a pcap record holds (32 bits). */
export const PCAP_MAX_SECONDS = 0xffff_ffff;

/** Latest timestamp, in whole seconds, the pcapng writer's 64-bit nanosecond count holds with any nanoseconds. */
export const PCAPNG_MAX_SECONDS = 18_446_744_072;

/** The formats the writers produce: pcap with microsecond or nanosecond timestamps, or pcapng. */
export type CaptureFormat = 'pcap' | 'pcap-ns' | 'pcapng';

/** pcap magic numbers as read little-endian from the first four bytes. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** Same magics written in the other byte order. */
export const PCAP_MAGIC_US_SWAPPED = 0xd4c3b2a1;
export const PCAP_MAGIC_NS_SWAPPED = 0x4d3cb2a1;
export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

/** pcapng block types. The section header's type reads the same in either byte order on purpose. */
export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_OPB = 0x00000002;
export const BT_SPB = 0x00000003;
export const BT_EPB = 0x00000006;
/** Byte-order magic of a section header. */
export const PCAPNG_BOM = 0x1a2b3c4d;
/** Interface option carrying the timestamp resolution. */
export const OPT_IF_TSRESOL = 9;
export const OPT_ENDOFOPT = 0;
