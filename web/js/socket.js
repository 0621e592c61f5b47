// The event WebSocket, reconnecting with backoff when the server goes away.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 5000;

export class EventSocket {
  // onEvent(event) for each engine event; onState('open' | 'reopened' | 'lost') when the connection changes.
  constructor({ onEvent, onState }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.delay = FIRST_DELAY_MS;
    this.everOpened = false;
    this.connected = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/events`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.delay = FIRST_DELAY_MS;
      this.connected = true;
      this.onState(this.everOpened ? 'reopened' : 'open');
      this.everOpened = true;
    });
    socket.addEventListener('message', (message) => {
      if (typeof message.data !== 'string') return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onEvent(event);
    });
    socket.addEventListener('close', () => {
      if (this.connected) this.onState('lost');
      this.connected = false;
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
    });
    // An error is always followed by close, which schedules the retry.
    socket.addEventListener('error', () => {});
  }
}
