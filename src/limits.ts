// Limits: the sizes the NIC, the data plane and the configuration file all accept, defined once.

/** The limits shared by the NIC, the data plane, the configuration validator and its JSON Schema. */
export const LIMITS = Object.freeze({
  /** Most factory MACs beyond the primary (a `factory` block's count or list length). */
  factory: 4096,
  /** Most clients open on one NIC; a client id is a 16-bit index in the data plane. */
  clients: 65535,
  /** Most active unicast MACs on one NIC, the primary included. */
  addresses: 1 << 20,
  /** Most unicast or multicast hardware filter entries. */
  entries: 1 << 20,
  /** Longest frame a NIC can be configured to accept. */
  frameLength: 1 << 18,
  /** Most distinct multicast groups a data plane holds by default (`DataPlaneOptions.maxGroups`). */
  groups: 256,
  /** Longest client name, in UTF-16 code units. */
  clientName: 256,
  /** Most VLANs the wire (a data plane's uplink) carries: the VLAN slots of a data plane bank. */
  vlans: 255,
});
