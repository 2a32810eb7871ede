// Tests of the cloud function with Node's own runner: node --test test/index.test.js
//
// wx-server-sdk only works inside Cloud Base, so a require hook hands
// index.js a stub in its place: the stub records cloud.init and every
// cloud.openapi.logistics.updatePath call and answers as each test says.
// No npm install is needed.
'use strict';

const { test, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const Module = require('node:module');
const path = require('node:path');

const stub = {
  DYNAMIC_CURRENT_ENV: Symbol('DYNAMIC_CURRENT_ENV'),
  inits: [],
  calls: [],
  answer: async () => ({ errCode: 0, errMsg: 'openapi.logistics.updatePath:ok' }),
  init(opts) {
    stub.inits.push(opts);
  },
  openapi: {
    logistics: {
      updatePath(args) {
        stub.calls.push(args);
        return stub.answer(args);
      },
    },
  },
};

// Load index.js with the stub as wx-server-sdk, and only for that require.
const realLoad = Module._load;
Module._load = function load(request, ...rest) {
  return request === 'wx-server-sdk' ? stub : realLoad.call(this, request, ...rest);
};
let fn;
try {
  fn = require(path.join(__dirname, '..', 'index.js'));
} finally {
  Module._load = realLoad;
}
const inits = [...stub.inits]; // made at load time, before any test resets

// CloudSDKError is shaped like wx-server-sdk's errors: errCode, errMsg and a
// message that repeats both.
class CloudSDKError extends Error {
  constructor(errCode, errMsg) {
    super(`errCode: ${errCode} ${errMsg} | errMsg: ${errMsg}`);
    this.errCode = errCode;
    this.errMsg = errMsg;
  }
}

const event = () => ({
  token: 'order-token-1',
  waybillId: 'SF1234567890',
  actionTime: 1700000000,
  actionType: 100001,
  actionMsg: '快递员已揽件',
});

beforeEach(() => {
  stub.calls = [];
  stub.answer = async () => ({ errCode: 0, errMsg: 'openapi.logistics.updatePath:ok' });
});

test('cloud.init runs once, with the environment the function is deployed in', () => {
  assert.deepEqual(inits, [{ env: stub.DYNAMIC_CURRENT_ENV }]);
});

test('success: the five camelCase fields pass through and errCode is 0', async () => {
  const ev = { ...event(), userInfo: { appId: 'wx123' } }; // HTTP-triggered events carry userInfo
  const res = await fn.main(ev, {});
  assert.deepEqual(res, { errCode: 0, errMsg: 'openapi.logistics.updatePath:ok' });
  assert.deepEqual(stub.calls, [event()]);
});

test('an answer without errMsg still says ok', async () => {
  stub.answer = async () => ({ errCode: 0 });
  assert.deepEqual(await fn.main(event()), { errCode: 0, errMsg: 'openapi.logistics.updatePath:ok' });
});

for (const [errCode, errMsg] of [
  [40199, 'openapi.logistics.updatePath:fail waybill not found'],
  [9300507, 'openapi.logistics.updatePath:fail incorrect token'],
  [-1, 'openapi.logistics.updatePath:fail system error'],
  [45011, 'openapi.logistics.updatePath:fail api minute-quota reach limit'],
  [-604101, 'function has no permission to call this API'],
]) {
  test(`a thrown errCode ${errCode} is returned, not thrown`, async () => {
    stub.answer = async () => {
      throw new CloudSDKError(errCode, errMsg);
    };
    assert.deepEqual(await fn.main(event()), { errCode, errMsg });
    assert.equal(stub.calls.length, 1);
  });
}

test('a non-zero errCode the SDK resolves with is returned as it is', async () => {
  stub.answer = async () => ({ errCode: 40199, errMsg: 'openapi.logistics.updatePath:fail waybill not found' });
  assert.deepEqual(await fn.main(event()), { errCode: 40199, errMsg: 'openapi.logistics.updatePath:fail waybill not found' });
});

test('an errCode given as a numeric string becomes a number', async () => {
  stub.answer = async () => {
    throw new CloudSDKError('9300507', 'incorrect token');
  };
  assert.deepEqual(await fn.main(event()), { errCode: 9300507, errMsg: 'incorrect token' });
});

test('an error without errCode is -1, with its message', async () => {
  stub.answer = async () => {
    throw new TypeError('socket hang up');
  };
  assert.deepEqual(await fn.main(event()), { errCode: -1, errMsg: 'socket hang up' });
  stub.answer = () => Promise.reject('plain string');
  assert.deepEqual(await fn.main(event()), { errCode: -1, errMsg: 'plain string' });
});

for (const field of ['token', 'waybillId', 'actionTime', 'actionType', 'actionMsg']) {
  test(`${field} missing: 47001 naming it, updatePath not called`, async () => {
    const ev = event();
    delete ev[field];
    const res = await fn.main(ev);
    assert.equal(res.errCode, 47001);
    assert.match(res.errMsg, new RegExp(`^data format error: ${field} is missing$`));
    assert.equal(stub.calls.length, 0);
  });
}

test('the snake_case spelling is not the cloud call\'s: 47001', async () => {
  const res = await fn.main({ token: 't', waybill_id: 'W', action_time: 1, action_type: 100001, action_msg: 'm' });
  assert.deepEqual(res, { errCode: 47001, errMsg: 'data format error: waybillId is missing' });
  assert.equal(stub.calls.length, 0);
});

for (const [name, mutate, want] of [
  ['actionTime a string', (ev) => { ev.actionTime = '1700000000'; }, 'actionTime is a string, not a number'],
  ['actionType a fraction', (ev) => { ev.actionType = 100001.5; }, 'actionType is not a whole number'],
  ['token empty', (ev) => { ev.token = ''; }, 'token is empty'],
  ['actionMsg null', (ev) => { ev.actionMsg = null; }, 'actionMsg is missing'],
]) {
  test(`${name}: 47001`, async () => {
    const ev = event();
    mutate(ev);
    assert.deepEqual(await fn.main(ev), { errCode: 47001, errMsg: `data format error: ${want}` });
    assert.equal(stub.calls.length, 0);
  });
}

for (const input of [null, undefined, 'text', 42, [event()]]) {
  test(`input ${JSON.stringify(input)}: 47001`, async () => {
    assert.deepEqual(await fn.main(input), { errCode: 47001, errMsg: 'data format error: the input is not an object' });
    assert.equal(stub.calls.length, 0);
  });
}
