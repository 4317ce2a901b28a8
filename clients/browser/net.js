// net.js: one WebSocket connection to the game server, as PROTOCOL.md asks:
// the same host's "/" (wss:// when the page came over https://), binary frames
// of one msgpack map each, hello first, every ping answered at once with its
// pong (§5.5: the server's RTT and jitter figures come from those pongs), and
// every client message kept within welcome.limits: its encoded size
// (max_message_bytes) and a token bucket mirroring the server's message rate
// (messages_per_second, message_burst, §5.8), so this client is never the one
// that gets rate_limited. Game logic lives elsewhere: this file hands decoded
// messages to onMessage and the close to onClose.
//
// msgpack comes from @msgpack/msgpack's UMD build (global MessagePack), loaded
// by index.html from /vendor/msgpack.min.js.

import { DEFAULT_LIMITS, describeClose } from "./protocol.js";

const MIB = 1 << 20;

/** Token bucket: `rate` tokens per second, at most `burst` saved. */
export class TokenBucket {
  constructor(rate, burst, now = performance.now()) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = now;
  }

  /** Take one token if more than `reserve` are left; true when taken. */
  take(reserve = 0, now = performance.now()) {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1 + reserve) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The URL of the game server that served this page. */
export function serverUrl(location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/`;
}

export class Connection {
  /**
   * @param {string} url  ws:// or wss:// URL
   * @param {object} handlers  onOpen(), onMessage(message), onClose({code, reason, opened,
   *   meaning}), onProblem(text): a local refusal or a server message that made no sense.
   */
  constructor(url, handlers) {
    const { Encoder, Decoder } = globalThis.MessagePack;
    this.url = url;
    this.handlers = handlers;
    this.encoder = new Encoder({ ignoreUndefined: true });
    // Server messages: at least the server-side limits of §2 (1 MiB strings,
    // 65536 entries). No ext types exist in the protocol: refuse them.
    this.decoder = new Decoder({
      maxStrLength: MIB,
      maxBinLength: MIB,
      maxArrayLength: 65536,
      maxMapLength: 65536,
      maxExtLength: 0,
    });
    this.limits = { ...DEFAULT_LIMITS };
    this.bucket = new TokenBucket(this.limits.messages_per_second, this.limits.message_burst);
    this.ws = null;
    this.opened = false;
  }

  /** Open the socket and send `hello` as soon as it is open. */
  connect(hello) {
    const ws = new WebSocket(this.url); // no subprotocol: the server answers none (§1)
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.opened = true;
      this.handlers.onOpen?.();
      this.send(hello);
    };
    ws.onmessage = (event) => this._receive(event.data);
    // A failed handshake or a lost connection fires "error" and then "close":
    // everything is reported from the close, which carries the code.
    ws.onerror = () => {};
    ws.onclose = (event) => {
      this.handlers.onClose?.({
        code: event.code,
        reason: event.reason,
        opened: this.opened,
        meaning: describeClose(event.code, event.reason),
      });
    };
    this.ws = ws;
  }

  /** Take the limits of `welcome` (unknown keys are kept and ignored, §3). */
  applyLimits(limits) {
    if (limits && typeof limits === "object") Object.assign(this.limits, limits);
    this.bucket = new TokenBucket(this.limits.messages_per_second, this.limits.message_burst);
  }

  /**
   * Encode and send one client message; false when it was not sent.
   *
   * `optional` messages (inputs, acks: the next one supersedes them) leave a
   * tenth of the message burst for the others (pongs, chat, join, leave), so a
   * steady stream of inputs can never starve a pong.
   */
  send(message, { optional = false } = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    const bytes = this.encoder.encode(message);
    if (bytes.byteLength > this.limits.max_message_bytes) {
      this.handlers.onProblem?.(
        `not sent: ${message.t} is ${bytes.byteLength} bytes, over the server's ` +
          `${this.limits.max_message_bytes}-byte limit`,
      );
      return false;
    }
    const reserve = optional ? Math.ceil(this.limits.message_burst / 10) : 0;
    if (!this.bucket.take(reserve) && (optional || message.t !== "pong")) {
      // A pong is sent even then: the server closes 4002 on a missing pong.
      if (!optional) this.handlers.onProblem?.(`not sent: ${message.t} (over the message rate)`);
      return false;
    }
    this.ws.send(bytes);
    return true;
  }

  /** End the session with 1000 (§5.10). */
  close() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "bye");
  }

  _receive(data) {
    if (typeof data === "string") {
      this.handlers.onProblem?.("the server sent a text frame (the protocol uses binary frames only)");
      return;
    }
    let message;
    try {
      message = this.decoder.decode(new Uint8Array(data));
    } catch (error) {
      this.handlers.onProblem?.(`undecodable message from the server: ${error.message}`);
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.t !== "string") {
      this.handlers.onProblem?.("a server message without a type");
      return;
    }
    if (message.t === "ping") {
      // At once, before anything else: the delay would count as latency.
      this.send({ t: "pong", nonce: message.nonce });
      return;
    }
    this.handlers.onMessage(message);
  }
}
