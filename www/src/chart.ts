// The small chart of the side panel: RTT and stored size over the last
// minute, one sample a second, each line scaled to its own maximum.
import { byId } from "./dom";

const SAMPLES = 60;
const WIDTH = 280;
const HEIGHT = 64;

/** Keeps the samples and draws the two lines into the #chart SVG. */
export class Chart {
  private rtt: (number | null)[] = [];
  private stored: (number | null)[] = [];

  sample(rttMs: number | null, storedBytes: number | null): void {
    this.rtt.push(rttMs);
    this.stored.push(storedBytes);
    if (this.rtt.length > SAMPLES) this.rtt.shift();
    if (this.stored.length > SAMPLES) this.stored.shift();
    this.draw();
  }

  private draw(): void {
    byId("chart-rtt").setAttribute("points", points(this.rtt));
    byId("chart-stored").setAttribute("points", points(this.stored));
    const max = (xs: (number | null)[]) => Math.max(0, ...xs.map((x) => x ?? 0));
    byId("chart-rtt-max").textContent = `${max(this.rtt)} ms`;
    byId("chart-stored-max").textContent = `${max(this.stored).toLocaleString("en")} B`;
  }
}

/** SVG polyline points for `values`; a gap (null) is drawn at the bottom. */
function points(values: (number | null)[]): string {
  const max = Math.max(1, ...values.map((v) => v ?? 0));
  const step = WIDTH / (SAMPLES - 1);
  const offset = SAMPLES - values.length;
  return values
    .map((v, i) => `${((offset + i) * step).toFixed(1)},${(HEIGHT - 2 - ((v ?? 0) / max) * (HEIGHT - 6)).toFixed(1)}`)
    .join(" ");
}
