// pathupdate's Cloud Call: one trace event in, one logistics.updatePath call,
// {errCode, errMsg} out.
//
// The pathupdate worker (--transport cloudcall) invokes this function through
// WeChat's HTTP API POST /tcb/invokecloudfunction with the event in the
// cloud-call spelling as the body: {token, waybillId, actionTime, actionType,
// actionMsg}. The function always returns {errCode, errMsg}, never throws, so
// the worker classifies its answer exactly as it would the HTTPS API's:
//   - the call succeeded: errCode 0 ("openapi.logistics.updatePath:ok");
//   - the call threw: the thrown error's errCode and errMsg (wx-server-sdk's
//     errors carry them: 40199 waybill not found, 9300507 incorrect token, -1
//     system error, 45011 quota, -604101 no permission in config.json, ...);
//     an error without a numeric errCode is -1 (a failure that may pass);
//   - the input is not an event: errCode 47001 (WeChat's "data format error"),
//     naming the field, and updatePath is not called.
//
// It needs the permission in config.json (permissions.openapi) and runs under
// the 5 s limit of HTTP-triggered functions: it does one call and nothing else.
'use strict';

const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });

const ERRCODE_SYSTEM_ERROR = -1;
const ERRCODE_DATA_FORMAT = 47001;

// The fields logistics.updatePath takes, with their JSON types. Only these
// are passed on: an event triggered over HTTP also carries userInfo.
const FIELDS = [
  ['token', 'string'],
  ['waybillId', 'string'],
  ['actionTime', 'number'],
  ['actionType', 'number'],
  ['actionMsg', 'string'],
];

// inputProblem says what is wrong with event, or '' when it is an event.
// The checks are of shape only; WeChat judges the values.
function inputProblem(event) {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    return 'the input is not an object';
  }
  for (const [name, type] of FIELDS) {
    const v = event[name];
    if (v === undefined || v === null) {
      return `${name} is missing`;
    }
    if (typeof v !== type) {
      return `${name} is a ${typeof v}, not a ${type}`;
    }
    if (type === 'string' && v === '') {
      return `${name} is empty`;
    }
    if (type === 'number' && !Number.isSafeInteger(v)) {
      return `${name} is not a whole number`;
    }
  }
  return '';
}

// errCodeOf reads a numeric errCode off a result or an error.
function errCodeOf(x, fallback) {
  const c = x && x.errCode;
  if (typeof c === 'number' && Number.isInteger(c)) {
    return c;
  }
  if (typeof c === 'string' && /^-?\d+$/.test(c)) {
    return Number(c);
  }
  return fallback;
}

exports.main = async (event) => {
  const problem = inputProblem(event);
  if (problem) {
    return { errCode: ERRCODE_DATA_FORMAT, errMsg: `data format error: ${problem}` };
  }
  const args = {};
  for (const [name] of FIELDS) {
    args[name] = event[name];
  }
  try {
    const res = await cloud.openapi.logistics.updatePath(args);
    return {
      errCode: errCodeOf(res, 0),
      errMsg: (res && typeof res.errMsg === 'string' && res.errMsg) || 'openapi.logistics.updatePath:ok',
    };
  } catch (err) {
    return {
      errCode: errCodeOf(err, ERRCODE_SYSTEM_ERROR),
      errMsg: String((err && (err.errMsg || err.message)) || err),
    };
  }
};
