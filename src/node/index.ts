// Node-only API (`macslot/node`): helpers that need the file system or processes. The core stays platform-neutral.

export {};
