// Data plane: transmit and anti-spoof, the switch's side of the data plane: a frame a client sends is checked or stamped
// with the client's source MAC, delivered to the other local clients, and handed to the uplink. It lives here until the
// switch (src/switch/) takes it over.

import { MacslotError, show } from '../errors.js';
import type { Nic } from '../nic/nic.js';
import { ETH_SRC, hasEthernetHeader, srcKey } from '../wire/ethernet.js';
import type { LaneReader } from './reader.js';
import type { FilterWriter } from './writer.js';

/** Sends clients' frames through the lane of the data plane that follows `nic`. */
export class Transmit {
  readonly #reader: LaneReader;
  readonly #writer: FilterWriter;
  readonly #nic: Nic;
  #uplink: ((frame: Uint8Array, from: number) => void) | undefined;
  #spoofed = 0;

  /** Sends through `reader`'s lane; `writer` knows each active MAC's owner. */
  constructor(reader: LaneReader, writer: FilterWriter, nic: Nic) {
    this.#reader = reader;
    this.#writer = writer;
    this.#nic = nic;
  }

  /** Frames dropped because their source MAC was not the sender's (or the sender had none). */
  get spoofed(): number {
    return this.#spoofed;
  }

  /** See DataPlane.setUplink. */
  setUplink(fn: ((frame: Uint8Array, from: number) => void) | undefined): void {
    this.#uplink = fn;
  }

  /** See DataPlane.send. */
  send(id: number, frame: Uint8Array, antiSpoof: boolean): boolean {
    const nic = this.#nic;
    const client = nic.client(id);
    if (client === undefined) throw new MacslotError('INVALID_ARGUMENT', `no open client with id ${show(id)}`);
    const maxFrame = this.#reader.maxFrameLength;
    let out: Uint8Array;
    if (antiSpoof) {
      // The per-frame path of a switch: one lookup of the source among the active MACs, no objects.
      if (!hasEthernetHeader(frame) || frame.length > maxFrame) return false;
      if (this.#writer.owner(srcKey(frame)) !== id) {
        this.#spoofed++;
        return false;
      }
      out = frame.slice();
    } else {
      const own = client
        .slots()
        .map((s) => nic.addressGet(s))
        .filter((s) => s.active && s.mac.kind === 'mac48');
      if (!hasEthernetHeader(frame) || frame.length > maxFrame || own.length === 0) {
        this.#spoofed += own.length === 0 ? 1 : 0;
        return false;
      }
      out = frame.slice();
      own[0]!.mac.writeTo(out, ETH_SRC);
    }
    this.#reader.single(out);
    this.#reader.rxBurst(1, id);
    this.#uplink?.(out, id);
    return true;
  }
}
