import { expect } from 'chai';
import { ThresholdFilter } from '../../../src/agent/checks/index.js';
import type { CheckResult } from '../../../src/agent/checks/index.js';

const pass: CheckResult = { status: 'passing', output: 'ok' };
const warn: CheckResult = { status: 'warning', output: 'meh' };
const fail: CheckResult = { status: 'critical', output: 'down' };

describe('checks/thresholds', () => {
  it('passes every result through with no thresholds', () => {
    const f = new ThresholdFilter({
      successBeforePassing: 0,
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
    });
    expect(f.accept(fail)).to.deep.equal(fail);
    expect(f.accept(pass)).to.deep.equal(pass);
    expect(f.accept(warn)).to.deep.equal(warn);
  });

  it('waits for SuccessBeforePassing consecutive successes', () => {
    const f = new ThresholdFilter({
      successBeforePassing: 2,
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
    });
    expect(f.accept(pass)).to.equal(undefined);
    expect(f.accept(fail)).to.deep.equal(fail); // resets the success count
    expect(f.accept(pass)).to.equal(undefined);
    expect(f.accept(pass)).to.deep.equal(pass);
    expect(f.accept(warn)).to.deep.equal(warn);
  });

  it('steps through warning before critical', () => {
    const f = new ThresholdFilter({
      successBeforePassing: 0,
      failuresBeforeWarning: 1,
      failuresBeforeCritical: 3,
    });
    expect(f.accept(fail)).to.deep.equal({ status: 'warning', output: 'down' });
    expect(f.accept(fail)).to.deep.equal({ status: 'warning', output: 'down' });
    expect(f.accept(fail)).to.deep.equal(fail);
    expect(f.accept(pass)).to.deep.equal(pass);
  });

  it('holds the state until FailuresBeforeCritical failures in a row', () => {
    const f = new ThresholdFilter({
      successBeforePassing: 0,
      failuresBeforeWarning: 2,
      failuresBeforeCritical: 2,
    });
    expect(f.accept(fail)).to.equal(undefined);
    expect(f.accept(pass)).to.deep.equal(pass); // resets the failure count
    expect(f.accept(fail)).to.equal(undefined);
    expect(f.accept(fail)).to.deep.equal(fail);
  });
});
