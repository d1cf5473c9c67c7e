// Adapters: a v86 emulator's network card (ne2k or virtio) as a frame port bound to one NIC client, through v86's bus only, so it runs in
// browsers and Node alike.

import { MacslotError, isMacslotError, reportListenerError, show } from '../errors.js';
import type { NicClient } from '../nic/nic.js';
import type { NicEvent } from '../nic/types.js';
import type { FramePort, PortCloseReason } from '../port/port.js';
import { ETH_HLEN, ETH_SRC, hasEthernetHeader, srcKey } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';

/** The adapter side of v86's paired bus (`emulator.bus`): listeners registered here hear the devices, `send` reaches them. */
export interface V86Bus {
  /** Calls `fn` with the data of every message named `name`. */
  register(name: string, fn: (data: unknown) => void, thisValue?: unknown): void;
  /** Stops calling `fn` for messages named `name`. */
  unregister(name: string, fn: (data: unknown) => void): void;
  /** Sends a message named `name` to the emulator's devices. */
  send(name: string, data?: unknown): void;
}

/** The part of a v86 emulator the adapter touches. v86's own typings leave `bus` out, so `attachV86` also takes a plain `V86`. */
export interface V86Like {
  /** The emulator's bus, where the network card's messages pass. */
  readonly bus: V86Bus;
}

/** Why a frame from the guest was dropped. */
export type V86GuestDrop =
  /** Not a Uint8Array. */
  | 'not-bytes'
  /** Shorter than an Ethernet header. */
  | 'runt'
  /** Longer than the NIC's largest frame. */
  | 'oversize'
  /** Multicast or zero source MAC. */
  | 'bad-source'
  /** Source differs from the guest's MAC and following is off. */
  | 'spoofed'
  /** The guest's MAC is active in another client. */
  | 'mac-in-use'
  /** The guest's MAC could not become the client's for another reason (reported as an `error` event). */
  | 'unclaimed'
  /** Nothing receives the port's frames yet. */
  | 'no-receiver'
  /** The receiver threw (reported as an `error` event). */
  | 'error';

/** Why a frame for the guest was dropped. */
export type V86HostDrop = 'not-bytes' | 'runt' | 'oversize' | 'echo' | 'closed' | 'error';

/** Frame and byte counts of one direction. */
export interface V86Traffic {
  /** Frames passed. */
  readonly frames: number;
  /** Bytes of those frames. */
  readonly bytes: number;
}

/** What an attachment counted since it was made. */
export interface V86Counters {
  /** Frames the guest sent that went on to the port's receiver. */
  readonly fromGuest: V86Traffic;
  /** Frames handed to the guest's card. */
  readonly toGuest: V86Traffic;
  /** Frames from the guest dropped, by reason. */
  readonly guestDrops: Readonly<Record<V86GuestDrop, number>>;
  /** Frames for the guest dropped, by reason. */
  readonly hostDrops: Readonly<Record<V86HostDrop, number>>;
  /** Times the guest's MAC became the client's active MAC (the first time included). */
  readonly macChanges: number;
  /** Attempts to take the guest's MAC that found it active in another client. */
  readonly macInUse: number;
}

/** What an attachment reports as it happens. */
export type V86Event =
  | {
      /** What happened. */
      readonly type: 'mac';
      /** The guest's MAC. */
      readonly mac: Mac;
      /** The MAC the guest had before. */
      readonly previous: Mac | undefined;
      /** The slot now holding the MAC. */
      readonly slot: number;
      /** What revealed the MAC: the card's event, a frame's source, or a retry. */
      readonly from: 'event' | 'frame' | 'retry';
    }
  | {
      /** What happened. */
      readonly type: 'mac-in-use';
      /** The guest's MAC. */
      readonly mac: Mac;
      /** What went wrong. */
      readonly error: MacslotError;
    }
  | {
      /** What happened. */
      readonly type: 'error';
      /** What went wrong. */
      readonly error: unknown;
      /** What the adapter was doing. */
      readonly during: 'mac' | 'send' | 'receive' | 'close';
    };

/** Options of `attachV86`. */
export interface V86AttachOptions {
  /** Which of the emulator's cards: its events are `net<N>-send`, `net<N>-receive` and `net<N>-mac`. Default 0. */
  net?: number;
  /** Take a new source MAC in the guest's frames as its new MAC (an NE2000 driver changes it without any event). Default true. */
  follow?: boolean;
  /** Largest frame in either direction. Default the NIC's. */
  maxFrameLength?: number;
}

/** A v86 card that keeps a NIC client's MAC equal to the guest's; a `FramePort` whose peer is the guest, ready for `bindClient`. */
export interface V86Attachment extends FramePort {
  /** The NIC client that holds the guest's MAC. */
  readonly client: NicClient;
  /** The guest's MAC as last seen (event or frame), whether or not it could be taken. */
  readonly guestMac: Mac | undefined;
  /** The client's slot that holds the guest's MAC, once one does. */
  readonly slot: number | undefined;
  /** Subscribes to MAC changes, clashes and errors; returns the function that unsubscribes. */
  on(listener: (event: V86Event) => void): () => void;
  /** Returns a snapshot of the counters. */
  counters(): V86Counters;
  /** Returns the drops with a count, by reason; those of frames for the guest start with `to-guest:`. */
  drops(): Readonly<Record<string, number>>;
}

const GUEST_DROPS: readonly V86GuestDrop[] = [
  'not-bytes',
  'runt',
  'oversize',
  'bad-source',
  'spoofed',
  'mac-in-use',
  'unclaimed',
  'no-receiver',
  'error',
];
const HOST_DROPS: readonly V86HostDrop[] = ['not-bytes', 'runt', 'oversize', 'echo', 'closed', 'error'];

// One attachment per client: two would fight over its slot.
const attached = new WeakSet<NicClient>();

function isBus(x: unknown): x is V86Bus {
  const b = x as Partial<V86Bus> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.register === 'function' &&
    typeof b.unregister === 'function' &&
    typeof b.send === 'function'
  );
}

class Attachment implements V86Attachment {
  readonly name: string;
  readonly client: NicClient;
  readonly #bus: V86Bus;
  readonly #follow: boolean;
  readonly #maxFrame: number;
  readonly #events: { send: string; receive: string; mac: string };
  readonly #listeners = new Set<(event: V86Event) => void>();
  readonly #unsubscribe: () => void;
  #receiver: ((frame: Uint8Array) => void) | undefined;
  #closeListener: ((reason: PortCloseReason) => void) | undefined;
  #closed = false;
  // The guest's MAC, and whether the client holds it as an active MAC right now.
  #wanted: Mac | undefined;
  #held = false;
  // Why the last take failed: the MAC is active elsewhere, or something else (no free entry, a closed client).
  #blocked: 'clash' | 'failed' | undefined;
  #taking = false;
  #slot: number | undefined;
  // How to leave the client on close: remove a slot this port added, or give a slot it found back its MAC.
  #added = false;
  readonly #original: Mac | undefined;
  #retryQueued = false;
  readonly #from = { frames: 0, bytes: 0 };
  readonly #to = { frames: 0, bytes: 0 };
  readonly #guestDrops = Object.fromEntries(GUEST_DROPS.map((r) => [r, 0])) as Record<V86GuestDrop, number>;
  readonly #hostDrops = Object.fromEntries(HOST_DROPS.map((r) => [r, 0])) as Record<V86HostDrop, number>;
  #macChanges = 0;
  #macInUse = 0;
  // Bound once: v86's bus unregisters by function identity.
  readonly #onSend = (data: unknown): void => this.#fromGuest(data);
  readonly #onMac = (data: unknown): void => this.#macEvent(data);

  constructor(bus: V86Bus, client: NicClient, net: number, options: V86AttachOptions, maxFrame: number) {
    this.#bus = bus;
    this.client = client;
    this.name = `v86:net${net}`;
    this.#events = { send: `net${net}-send`, receive: `net${net}-receive`, mac: `net${net}-mac` };
    this.#follow = options.follow ?? true;
    this.#maxFrame = maxFrame;
    // Slot 0 is the NIC's primary and never changes hands, so the guest gets another slot the client holds, or a new one.
    this.#slot = client.slots().find((s) => s !== 0);
    this.#original = this.#slot === undefined ? undefined : client.addressGet(this.#slot).mac;
    this.#unsubscribe = client.nic.on((e) => this.#nicEvent(e));
    bus.register(this.#events.send, this.#onSend);
    bus.register(this.#events.mac, this.#onMac);
  }

  get guestMac(): Mac | undefined {
    return this.#wanted;
  }

  get slot(): number | undefined {
    return this.#held ? this.#slot : undefined;
  }

  on(listener: (event: V86Event) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.#receiver = receiver;
  }

  onClose(listener: (reason: PortCloseReason) => void): void {
    this.#closeListener = listener;
  }

  counters(): V86Counters {
    return {
      fromGuest: { ...this.#from },
      toGuest: { ...this.#to },
      guestDrops: { ...this.#guestDrops },
      hostDrops: { ...this.#hostDrops },
      macChanges: this.#macChanges,
      macInUse: this.#macInUse,
    };
  }

  drops(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.#guestDrops)) if (v > 0) out[k] = v;
    for (const [k, v] of Object.entries(this.#hostDrops)) if (v > 0) out[`to-guest:${k}`] = v;
    return out;
  }

  send(frame: Uint8Array): boolean {
    if (this.#closed) return this.#hostDrop('closed');
    if (!(frame instanceof Uint8Array)) return this.#hostDrop('not-bytes');
    if (!hasEthernetHeader(frame)) return this.#hostDrop('runt');
    if (frame.length > this.#maxFrame) return this.#hostDrop('oversize');
    // A frame carrying the guest's own source would make its stack see a duplicate of itself.
    const w = this.#wanted;
    if (w !== undefined && sourceIs(frame, w)) return this.#hostDrop('echo');
    // The card may keep or rewrite what it is handed; the caller's buffer (often a ring slot) must stay the caller's.
    const copy = frame.slice();
    try {
      this.#bus.send(this.#events.receive, copy);
    } catch (error) {
      this.#emit({ type: 'error', error, during: 'receive' });
      return this.#hostDrop('error');
    }
    this.#count(this.#to, copy);
    return true;
  }

  close(): void {
    this.#shut({ kind: 'local' });
  }

  #shut(reason: PortCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#bus.unregister(this.#events.send, this.#onSend);
    this.#bus.unregister(this.#events.mac, this.#onMac);
    this.#unsubscribe();
    attached.delete(this.client);
    if (this.client.open && this.#slot !== undefined && this.client.slots().includes(this.#slot)) {
      try {
        if (this.#added) this.client.addressRemove(this.#slot);
        else if (this.#original !== undefined) this.client.addressModify(this.#slot, this.#original);
      } catch (error) {
        this.#emit({ type: 'error', error, during: 'close' });
      }
    }
    const listener = this.#closeListener;
    this.#closeListener = undefined;
    listener?.(reason);
  }

  /** Everything the card transmits lands here, inside v86's loop: nothing may throw out of it. */
  #fromGuest(data: unknown): void {
    if (this.#closed) return;
    if (!(data instanceof Uint8Array)) return this.#guestDrop('not-bytes');
    if (!hasEthernetHeader(data)) return this.#guestDrop('runt');
    if (data.length > this.#maxFrame) return this.#guestDrop('oversize');
    // The NE2000 hands a view of its own memory that its next transmit overwrites.
    const frame = data.slice();
    const w = this.#wanted;
    if (w === undefined || !sourceIs(frame, w)) {
      const src = Mac.fromBytes(frame, ETH_SRC, 6);
      if (!src.isValidUnicast) return this.#guestDrop('bad-source');
      if (w !== undefined && !this.#follow) return this.#guestDrop('spoofed');
      this.#take(src, 'frame');
    }
    if (!this.#held) return this.#guestDrop(this.#blocked === 'clash' ? 'mac-in-use' : 'unclaimed');
    const receiver = this.#receiver;
    if (receiver === undefined) return this.#guestDrop('no-receiver');
    try {
      receiver(frame);
    } catch (error) {
      this.#emit({ type: 'error', error, during: 'send' });
      return this.#guestDrop('error');
    }
    this.#count(this.#from, frame);
  }

  #macEvent(data: unknown): void {
    if (this.#closed) return;
    let mac: Mac;
    try {
      mac = Mac.parse(data as string);
    } catch (error) {
      this.#emit({ type: 'error', error, during: 'mac' });
      return;
    }
    if (mac.kind !== 'mac48' || !mac.isValidUnicast) {
      this.#emit({
        type: 'error',
        error: new MacslotError('INVALID_MAC', `${this.#events.mac} announced ${mac.toString()}, which cannot be a guest's address`),
        during: 'mac',
      });
      return;
    }
    this.#take(mac, 'event');
  }

  /** Makes `mac` the guest's MAC and tries to make it the client's active MAC; failures are reported, never thrown. */
  #take(mac: Mac, from: 'event' | 'frame' | 'retry'): void {
    this.#wanted = mac;
    let previous: Mac | undefined;
    this.#held = false;
    this.#blocked = undefined;
    this.#taking = true;
    try {
      if (this.#slot !== undefined && this.client.slots().includes(this.#slot)) {
        const before = this.client.addressGet(this.#slot);
        if (before.active) previous = before.mac;
        this.client.addressModify(this.#slot, mac);
      } else {
        this.#slot = this.client.addressAdd(mac).slot;
        this.#added = true;
      }
    } catch (error) {
      if (isMacslotError(error, 'MAC_IN_USE')) {
        this.#blocked = 'clash';
        this.#macInUse++;
        this.#emit({ type: 'mac-in-use', mac, error });
      } else {
        this.#blocked = 'failed';
        this.#emit({ type: 'error', error, during: 'mac' });
      }
      return;
    } finally {
      this.#taking = false;
    }
    this.#held = true;
    this.#macChanges++;
    this.#emit({ type: 'mac', mac, previous, slot: this.#slot, from });
  }

  #nicEvent(e: NicEvent): void {
    if (this.#closed || this.#taking) return;
    if (e.type === 'client-closed' && e.clientId === this.client.id) {
      this.#shut({ kind: 'peer' });
      return;
    }
    if (this.#wanted === undefined) return;
    // The client's owner changed or released the slot under the guest: it no longer holds the guest's MAC.
    if ((e.type === 'modified' || e.type === 'released') && e.clientId === this.client.id && e.slot === this.#slot) {
      if (e.type === 'released') this.#added = false;
      if (e.type === 'released' || !e.mac.equals(this.#wanted)) this.#held = false;
    }
    // Any MAC or slot that frees up may be what the guest was waiting for; retry once the NIC's change is complete.
    if (!this.#held && (e.type === 'released' || e.type === 'modified' || e.type === 'client-closed') && !this.#retryQueued) {
      this.#retryQueued = true;
      queueMicrotask(() => {
        this.#retryQueued = false;
        if (!this.#closed && !this.#held && this.#wanted !== undefined) this.#take(this.#wanted, 'retry');
      });
    }
  }

  #emit(event: V86Event): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch (err) {
        // A listener's bug must not unwind into v86's loop, nor end the process from a microtask.
        reportListenerError(err);
      }
    }
  }

  #count(t: { frames: number; bytes: number }, frame: Uint8Array): void {
    t.frames++;
    t.bytes += frame.length;
  }

  #guestDrop(reason: V86GuestDrop): void {
    this.#guestDrops[reason]++;
  }

  #hostDrop(reason: V86HostDrop): false {
    this.#hostDrops[reason]++;
    return false;
  }
}

function sourceIs(frame: Uint8Array, mac: Mac): boolean {
  return srcKey(frame) === mac.key;
}

/**
 * Connects v86's card `net<N>` to `client` (bind the returned port with `bindClient` to carry its
 * frames through a data plane): the guest's MAC (from the `net<N>-mac` event, or the
 * source of its first frame) becomes the client's active MAC, in a slot the client holds or a new
 * one, and follows the guest when it changes. A MAC active in another client is reported as a
 * `mac-in-use` event and counted; the guest's frames are dropped until it is free, never shared.
 * Throws INVALID_ARGUMENT for a value that is not an emulator, a client or a valid option,
 * CLIENT_CLOSED for a closed client.
 */
export function attachV86(emulator: V86Like | object, client: NicClient, options: V86AttachOptions = {}): V86Attachment {
  const bus = (emulator as { bus?: unknown } | null)?.bus;
  if (!isBus(bus)) throw new MacslotError('INVALID_ARGUMENT', `expected a v86 emulator (an object with a bus), got ${show(emulator)}`);
  const c = client as Partial<NicClient> | null;
  if (typeof c !== 'object' || c === null || typeof c.slots !== 'function' || typeof c.id !== 'number' || typeof c.nic?.on !== 'function') {
    throw new MacslotError('INVALID_ARGUMENT', `expected a NicClient, got ${show(client)}`);
  }
  if (!client.open) throw new MacslotError('CLIENT_CLOSED', `client ${show(client.name)} is closed`);
  if (typeof options !== 'object' || options === null)
    throw new MacslotError('INVALID_ARGUMENT', `options must be an object, got ${show(options)}`);
  const net = options.net ?? 0;
  if (!Number.isInteger(net) || net < 0 || net > 255)
    throw new MacslotError('INVALID_ARGUMENT', `net must be an integer in 0..255, got ${show(options.net)}`);
  const maxFrame = options.maxFrameLength ?? client.nic.maxFrameLength;
  if (!Number.isInteger(maxFrame) || maxFrame < ETH_HLEN || maxFrame > 1 << 18)
    throw new MacslotError(
      'INVALID_ARGUMENT',
      `maxFrameLength must be an integer in ${ETH_HLEN}..${1 << 18}, got ${show(options.maxFrameLength)}`,
    );
  if (attached.has(client)) throw new MacslotError('INVALID_ARGUMENT', `client ${show(client.name)} is already attached to a v86 card`);
  const a = new Attachment(bus, client, net, options, maxFrame);
  attached.add(client);
  return a;
}
