/** Seconds since the epoch. One clock for the whole server; tests pass their own. */
export type Clock = () => number;

export const systemClock: Clock = () => Math.floor(Date.now() / 1000);
