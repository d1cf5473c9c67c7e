// Platform types the public declarations name, declared here so that they compile in a project without the DOM
// or WebWorker library (a Node-only project with `lib: ["es2022"]` and `types: ["node"]`). The interfaces are
// empty, so they merge with the full ones wherever those libraries are loaded.

declare global {
  namespace WebAssembly {
    /** A compiled WebAssembly module (the platform's `WebAssembly.Module`). */
    interface Module {}
    /** A WebAssembly memory (the platform's `WebAssembly.Memory`). */
    interface Memory {}
  }
  /** The browser's IndexedDB factory (`globalThis.indexedDB`). */
  interface IDBFactory {}
}

export {};
