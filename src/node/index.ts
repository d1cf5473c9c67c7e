// Node-only API (`macslot/node`): helpers that need the file system or processes. The core stays platform-neutral.

// ---- Capture files on disk ----
export { AtomicFile, CaptureFile, captureChunks, readCaptureFile } from './capture.js';

// ---- The MAC store on disk ----
export { FileStore, defaultStorePath, type FileStoreOptions, type FileSystem, type StorePathEnv } from './file-store.js';
