#!/usr/bin/env node
// Starts s3rver for the S3 MediaStore tests (src/media/s3_media_store_test.cpp):
//   node start.js <data-directory> <bucket>
// on 127.0.0.1 with a port the OS picks, creates the bucket, and prints
// "s3rver listening on 127.0.0.1:<port>" once it accepts requests. Stops on SIGTERM.
//
// s3rver 3.x differs from S3 where the tests care, so this adjusts it:
// - It checks no SigV4 signature and no x-amz-content-sha256. A check of both goes in front
//   of it: the signature is recomputed from the request as it arrived (catching any
//   difference between what the client signed and what it sent), and a PUT whose stored
//   bytes do not hash to x-amz-content-sha256 is deleted and refused.
// - Its PUT writes the object file in place and answers before the file is complete, so
//   concurrent PUTs of one key, or a GET right after a PUT, see partial files. S3 writes
//   are atomic; here a PUT now writes a temporary file and renames it into place, and the
//   metadata files likewise.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Readable, Transform } = require('stream');
const { pipeline } = require('stream/promises');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  console.error('usage: node start.js <data-directory> <bucket>');
  process.exit(2);
}
const ACCESS_KEY = 'S3RVER'; // s3rver's built-in account
const SECRET_KEY = 'S3RVER';

const encode = s =>
  encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = data => crypto.createHash('sha256').update(data).digest('hex');
const xmlEscape = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fail(ctx, status, code, message) {
  console.error(`start.js: ${ctx.method} ${ctx.url}: ${code}: ${message}`);
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

// null if the request's SigV4 Authorization header is right, else why not.
function checkSignature(ctx) {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      ctx.get('authorization'),
    );
  if (!m) return 'malformed or missing Authorization header';
  const [, accessKey, date, region, signedHeaders, signature] = m;
  if (accessKey !== ACCESS_KEY) return `unknown access key ${accessKey}`;
  const names = signedHeaders.split(';');
  for (const required of ['host', 'x-amz-content-sha256', 'x-amz-date']) {
    if (!names.includes(required)) return `${required} is not signed`;
  }
  const amzDate = ctx.get('x-amz-date');
  if (amzDate.slice(0, 8) !== date) return 'x-amz-date does not match the credential date';

  const raw = ctx.req.url;
  const q = raw.indexOf('?');
  const path = (q < 0 ? raw : raw.slice(0, q))
    .split('/')
    .map(s => encode(decodeURIComponent(s)))
    .join('/');
  const query = (q < 0 ? '' : raw.slice(q + 1))
    .split('&')
    .filter(Boolean)
    .map(kv => {
      const i = kv.indexOf('=');
      const [k, v] = i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      return [encode(decodeURIComponent(k)), encode(decodeURIComponent(v))];
    })
    .sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = names
    .map(n => `${n}:${String(ctx.req.headers[n] || '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonical = [ctx.method, path, query, headers, signedHeaders, ctx.get('x-amz-content-sha256')].join(
    '\n',
  );
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac('AWS4' + SECRET_KEY, date);
  for (const part of [region, 's3', 'aws4_request']) key = hmac(key, part);
  if (hmac(key, toSign).toString('hex') === signature) return null;
  return `signature does not match; canonical request was:\n${canonical}`;
}

async function verify(ctx, next) {
  const problem = checkSignature(ctx);
  if (problem) return fail(ctx, 403, 'SignatureDoesNotMatch', problem);
  await next();
  const claimed = ctx.get('x-amz-content-sha256');
  if (ctx.method !== 'PUT' || ctx.status !== 200 || !/^[0-9a-f]{64}$/.test(claimed)) return;
  // Path style: /<bucket>/<key>.
  const parts = ctx.path.split('/').slice(1).map(decodeURIComponent);
  if (parts.length < 2) return;
  const [b, ...rest] = parts;
  const key = rest.join('/');
  const object = await ctx.store.getObject(b, key);
  const hash = crypto.createHash('sha256');
  if (object && object.content) {
    for await (const chunk of object.content) hash.update(chunk);
  }
  const actual = hash.digest('hex');
  if (actual !== claimed) {
    await ctx.store.deleteObject(b, key);
    fail(ctx, 400, 'XAmzContentSHA256Mismatch', `content hashes to ${actual}, not ${claimed}`);
  }
}

async function writeAtomically(file, data) {
  const tmp = `${file}.${crypto.randomBytes(8).toString('hex')}.tmp`;
  await fs.promises.writeFile(tmp, data);
  await fs.promises.rename(tmp, file);
}

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  // Not listed: listings only show files ending in the object suffix.
  const tmp = `${objectPath}.${crypto.randomBytes(8).toString('hex')}.tmp`;
  const md5 = crypto.createHash('md5');
  let size = 0;
  const count = new Transform({
    transform(chunk, encoding, done) {
      md5.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(source, count, fs.createWriteStream(tmp));
    await fs.promises.rename(tmp, objectPath);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

FilesystemStore.prototype.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
  // As s3rver's own, but each file replaced atomically.
  const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');
  const md5Path = this.getResourcePath(bucket, key, 'object.md5');
  const json = {};
  for (const [name, value] of Object.entries(metadata || {})) {
    if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')) {
      json[name] = value;
    }
  }
  if (md5) await writeAtomically(md5Path, md5);
  await writeAtomically(metadataPath, JSON.stringify(json, null, 2));
};

const server = new S3rver({
  directory,
  address: '127.0.0.1',
  port: 0,
  silent: !process.env.PARLEY_S3RVER_VERBOSE,
  configureBuckets: [{ name: bucket, configs: [] }],
});
server.middleware.unshift(verify);
server
  .run()
  .then(({ address, port }) => console.log(`s3rver listening on ${address}:${port}`))
  .catch(err => {
    console.error(err);
    process.exit(1);
  });
process.on('SIGTERM', () => {
  server.close().finally(() => process.exit(0));
});
