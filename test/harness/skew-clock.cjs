/**
 * Preloaded into a processor (NODE_OPTIONS=--require) by the clock-skew test on the rdkafka
 * transport: Date.now() and new Date() run SKEW_CLOCK_MS ahead (or behind, if negative) of the
 * machine's clock. libfaketime does this for the kafkajs transport, but librdkafka's condition
 * waits do not survive it (its client hangs at start); the processor's rules and every record
 * timestamp it sets come from JavaScript's clock, which this skews.
 */
/* global process */
'use strict';
const skew = Number(process.env.SKEW_CLOCK_MS);
if (!Number.isFinite(skew)) throw new Error('SKEW_CLOCK_MS must be a number of milliseconds');
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + skew);
    else super(...args);
  }
  static now() {
    return realNow() + skew;
  }
}
globalThis.Date = SkewedDate;
