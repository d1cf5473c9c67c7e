// Node-only API (`macslot/node`): helpers that need the file system or processes. The core stays platform-neutral.

// The platform types the declarations name, for projects without the DOM library (no code at run time).
export type {} from '../platform.js';

// ---- Capture files on disk ----
export { AtomicFile, CaptureFile, captureChunks, readCaptureFile } from './capture.js';
export {
  resolveOutput,
  writeFileAtomic,
  type AtomicFileOptions,
  type OutputFileSystem,
  type OutputOptions,
  type OutputStats,
  type OutputTarget,
} from './output-file.js';

// ---- The MAC store on disk ----
export { FileStore, defaultStorePath, type FileStoreOptions, type FileSystem, type StorePathEnv } from './file-store.js';

// ---- Frame ports over sockets, child processes and WebSocket; the switch's listeners ----
export {
  socketPort,
  pipePort,
  listenStream,
  type Listener,
  type StreamAddress,
  type StreamPortOptions,
  type StreamListenOptions,
  type PeerLimits,
} from './stream.js';
export {
  DEFAULT_MAX_CLIENTS,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_DGRAM_IDLE_MS,
  type ListenerCounters,
  type ListenerLimits,
} from './listener.js';
export { listenDgram, type DgramOptions } from './dgram.js';
export { spawnVdePlug, spawnPasst, connectStream, type PasstPeer, type SpawnPeerOptions, type SpawnPasstOptions } from './peers.js';
export {
  webSocketPort,
  listenWebSocket,
  connectWebSocket,
  type WebSocketLike,
  type WebSocketPortOptions,
  type WebSocketListenOptions,
} from './websocket.js';
export { serveSwitch, parseListen, parseUplink, type ListenSpec, type UplinkSpec, type ServeOptions, type ServedSwitch } from './switch.js';
export { passtUplinks, passtGuestArgs, GATEWAY_MAC, type PasstUplinksOptions } from './passt-pool.js';
