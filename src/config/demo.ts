// Configuration: the built-in demo NIC and its clients, shared by `macslot demo` and the live page of `macslot serve`.

import type { MacslotConfig } from './config.js';

/** The built-in setup, in the configuration file's format. */
export const DEMO_CONFIG: MacslotConfig = {
  nic: {
    primary: '00:14:4f:00:00:00',
    factory: { base: '00:14:4f:00:00:01', count: 8 },
    unicastEntries: 4,
    multicastEntries: 2,
    overflow: 'promiscuous',
  },
  clients: [
    { name: 'vm-a', address: 'factory', multicast: ['33:33:00:00:00:01'] },
    { name: 'vm-b', address: '02:08:20:00:00:0b', multicast: ['33:33:00:00:00:01', '01:00:5e:00:00:fb'] },
    { name: 'vm-c', address: 'factory:3', broadcast: false },
    { name: 'vm-d', address: 'random:02:08:20/24' },
    { name: 'tap', promiscuous: true },
  ],
  seed: 7,
};
