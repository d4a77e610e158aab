/**
 * A lifetime written as the seed package writes it: `new DateInterval('1h')`, `'15m'`, `'30d'`,
 * `'90 seconds'`… (the `ms` package's syntax: a number and a unit of ms, s, m, h, d, w or y, long
 * forms allowed). The core counts whole seconds.
 */
const UNITS: Readonly<Record<string, number>> = {
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
  y: 31_557_600_000, yr: 31_557_600_000, yrs: 31_557_600_000, year: 31_557_600_000, years: 31_557_600_000,
};

export class DateInterval {
  readonly timeInMs: number;

  constructor(readonly interval: string) {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(interval);
    const unit = UNITS[(match?.[2] ?? '').toLowerCase() || 'ms'];
    if (match === null || unit === undefined) throw new RangeError(`DateInterval: cannot read ${JSON.stringify(interval)} (use e.g. "15m", "1h", "30d")`);
    this.timeInMs = Math.round(Number(match[1]) * unit);
    if (!Number.isFinite(this.timeInMs) || this.timeInMs <= 0) throw new RangeError(`DateInterval: ${JSON.stringify(interval)} must be a positive duration`);
  }

  /** Whole seconds (at least 1). */
  getSeconds(): number {
    return Math.max(1, Math.floor(this.timeInMs / 1000));
  }

  getEndDate(from: Date = new Date()): Date {
    return new Date(from.getTime() + this.timeInMs);
  }

  getEndTimeMs(from: Date = new Date()): number {
    return this.getEndDate(from).getTime();
  }

  getEndTimeSeconds(from: Date = new Date()): number {
    return Math.floor(this.getEndTimeMs(from) / 1000);
  }
}
