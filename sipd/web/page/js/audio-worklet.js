// The softphone's audio threads (AudioWorklet, in an AudioContext running at 16 kHz):
// capture cuts the microphone into 20 ms frames of 16-bit PCM for the audio channel;
// playback plays the frames that come back through a small buffer (50 ms before it starts,
// at most 120 ms: past that the oldest samples go, so delay never builds up).

const FRAME = 320; // samples: 20 ms at 16 kHz
const START = 800; // 50 ms
const CAP = 1920; // 120 ms

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(FRAME);
    this.fill = 0;
    this.muted = false;
    this.port.onmessage = (event) => { this.muted = Boolean(event.data && event.data.muted); };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i += 1) {
      const sample = this.muted ? 0 : Math.max(-1, Math.min(1, input[i]));
      this.frame[this.fill] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
      this.fill += 1;
      if (this.fill === FRAME) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.fill = 0;
      }
    }
    return true;
  }
}

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = [];
    this.offset = 0; // read position in chunks[0]
    this.buffered = 0; // samples waiting
    this.playing = false;
    this.port.onmessage = (event) => this.push(new Int16Array(event.data));
  }

  push(pcm) {
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i += 1) samples[i] = pcm[i] / 0x8000;
    this.chunks.push(samples);
    this.buffered += samples.length;
    while (this.buffered > CAP) {
      const dropped = this.chunks.shift();
      this.buffered -= dropped.length - this.offset;
      this.offset = 0;
    }
  }

  process(inputs, outputs) {
    const output = outputs[0][0];
    if (!this.playing && this.buffered >= START) this.playing = true;
    let written = 0;
    while (this.playing && written < output.length && this.chunks.length) {
      const chunk = this.chunks[0];
      const count = Math.min(output.length - written, chunk.length - this.offset);
      output.set(chunk.subarray(this.offset, this.offset + count), written);
      written += count;
      this.offset += count;
      this.buffered -= count;
      if (this.offset === chunk.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    if (written < output.length) {
      output.fill(0, written);
      this.playing = false; // ran dry: wait for the start slack again
    }
    for (let channel = 1; channel < outputs[0].length; channel += 1) {
      outputs[0][channel].set(output);
    }
    return true;
  }
}

registerProcessor("sipd-capture", Capture);
registerProcessor("sipd-playback", Playback);
