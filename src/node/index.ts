// Node-only API (`macslot/node`): helpers that need the file system or processes. The core stays platform-neutral.

// The platform types the declarations name, for projects without the DOM library (no code at run time).
export type {} from '../platform.js';

// ---- Capture files on disk ----
export { AtomicFile, CaptureFile, captureChunks, readCaptureFile } from './capture.js';

// ---- The MAC store on disk ----
export { FileStore, defaultStorePath, type FileStoreOptions, type FileSystem, type StorePathEnv } from './file-store.js';

// ---- Frame ports over sockets, child processes and WebSocket; the switch's listeners ----
export { socketPort, pipePort, listenStream, type Listener, type StreamAddress, type StreamPortOptions } from './stream.js';
export { listenDgram, type DgramOptions } from './dgram.js';
export { spawnVdePlug, spawnPasst, connectStream, type PasstPeer, type SpawnPeerOptions } from './peers.js';
export { webSocketPort, listenWebSocket, connectWebSocket, type WebSocketLike, type WebSocketPortOptions } from './websocket.js';
export { serveSwitch, parseListen, parseUplink, type ListenSpec, type UplinkSpec, type ServeOptions, type ServedSwitch } from './switch.js';
