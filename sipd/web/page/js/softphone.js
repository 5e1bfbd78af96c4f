// The browser softphone: the microphone goes to a call and the call to the speaker, over the
// page server's audio channel (/audio/SESSION): binary WebSocket messages of 20 ms of 16-bit
// PCM at 16 kHz, both ways. It logs in like RPC, with the token, as its first message.

const RATE = 16000;

export function softphonePossible() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia
    && window.AudioWorkletNode && window.isSecureContext);
}

export class Softphone {
  constructor(token, announce) {
    this.token = token;
    this.announce = announce;
    this.context = null;
    this.microphone = null;
    this.capture = null;
    this.playback = null;
    this.ws = null;
    this.session = null;
    this.muted = false;
  }

  // The microphone and the audio threads; call it from a click (browsers start audio only
  // after a gesture). Resolves false, with the reason announced, when there is no microphone.
  async prepare() {
    if (this.context) {
      await this.context.resume();
      return true;
    }
    try {
      this.microphone = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
      });
      this.context = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
      await this.context.audioWorklet.addModule("js/audio-worklet.js");
      this.capture = new AudioWorkletNode(this.context, "sipd-capture", { numberOfOutputs: 0 });
      this.context.createMediaStreamSource(this.microphone).connect(this.capture);
      this.playback = new AudioWorkletNode(this.context, "sipd-playback",
        { numberOfInputs: 0, outputChannelCount: [1] });
      this.playback.connect(this.context.destination);
      this.capture.port.onmessage = (event) => this.send(event.data);
      await this.context.resume();
      return true;
    } catch (error) {
      this.announce(`No browser audio: ${error.message}`);
      this.release();
      return false;
    }
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.ready) this.ws.send(frame);
  }

  // Carry this session's audio (the one session at a time: another one is let go).
  attach(session) {
    if (this.session === session) return;
    this.detach();
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${window.location.host}/audio/${encodeURIComponent(session)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.session = session;
    this.ready = false;
    ws.addEventListener("open", () => ws.send(JSON.stringify({ token: this.token })));
    ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") {
        this.ready = Boolean(JSON.parse(event.data).ready);
      } else if (this.playback) {
        this.playback.port.postMessage(event.data, [event.data]);
      }
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.session = null;
      if (event.code !== 1000) this.announce(`Browser audio stopped: ${event.reason || event.code}`);
    });
  }

  detach() {
    if (this.ws) this.ws.close(1000, "done");
    this.ws = null;
    this.session = null;
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.capture) this.capture.port.postMessage({ muted });
  }

  release() {
    this.detach();
    if (this.microphone) this.microphone.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close();
    this.microphone = this.context = this.capture = this.playback = null;
  }
}
