/**
 * The S3 client's pure parts: store URLs, credentials from the AWS environment and files, and Signature Version 4
 * against the example AWS publishes. The requests themselves are tested against a real server (artifacts-s3.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { parseS3Url, resolveCredentials, signV4 } from "../../src/serve/s3.js";
import { tempDir } from "../support/repo.js";

test("store URLs: bucket, prefix, endpoint, region and addressing", () => {
  const a = parseS3Url("s3://nars/cache/x86?endpoint=http://127.0.0.1:7480", { HOME: tempDir("cpr-home-") });
  assert.deepEqual(a, {
    bucket: "nars",
    prefix: "cache/x86/",
    endpoint: "http://127.0.0.1:7480",
    region: "us-east-1",
    pathStyle: true,
    profile: "default",
  });
  const b = parseS3Url("s3://nars", { HOME: tempDir("cpr-home-"), AWS_REGION: "eu-west-3" });
  assert.equal(b.endpoint, "https://s3.eu-west-3.amazonaws.com");
  assert.equal(b.pathStyle, false);
  assert.equal(b.prefix, "");
  const c = parseS3Url("s3://nars/p/?region=ap-south-1&path-style=false&endpoint=https://s3.example.org/", { AWS_REGION: "eu-west-3" });
  assert.equal(c.region, "ap-south-1");
  assert.equal(c.pathStyle, false);
  assert.equal(c.endpoint, "https://s3.example.org");
  const d = parseS3Url("s3://nars", {
    HOME: tempDir("cpr-home-"),
    AWS_ENDPOINT_URL: "http://127.0.0.1:9000",
    AWS_ENDPOINT_URL_S3: "http://[::1]:7480",
  });
  assert.deepEqual([d.endpoint, d.pathStyle], ["http://[::1]:7480", true], "the AWS tools' endpoint variables, S3's first");
  for (const bad of [
    "http://nars/x",
    "s3://UPPER/x",
    "s3://nars/x?bucket=1",
    "s3://key:secret@nars/x",
    "s3://nars?endpoint=ftp://h",
    "s3://nars?path-style=yes",
  ]) {
    assert.throws(
      () => parseS3Url(bad, {}),
      (e: unknown) => e instanceof CprError && e.code === "registry.store-url" && !/secret/.test(e.message),
      bad,
    );
  }
});

test("credentials: the environment first, then the profile in the credentials file, then in the config file", () => {
  const home = tempDir("cpr-home-");
  mkdirSync(join(home, ".aws"));
  writeFileSync(
    join(home, ".aws", "credentials"),
    "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n\n[other]\n# comment\naws_access_key_id=OTHERKEY\naws_secret_access_key=othersecret\naws_session_token = tok\n",
  );
  writeFileSync(
    join(home, ".aws", "config"),
    "[profile cfg]\naws_access_key_id = CFGKEY\naws_secret_access_key = cfgsecret\nregion = eu-north-1\n",
  );
  const loc = (url: string, env: NodeJS.ProcessEnv) => parseS3Url(url, env);

  const env = { HOME: home, AWS_ACCESS_KEY_ID: "ENVKEY", AWS_SECRET_ACCESS_KEY: "envsecret" };
  assert.equal(resolveCredentials(loc("s3://bkt", env), env).accessKeyId, "ENVKEY");
  assert.equal(resolveCredentials(loc("s3://bkt", { HOME: home }), { HOME: home }).accessKeyId, "FILEKEY");
  const other = resolveCredentials(loc("s3://bkt", { HOME: home, AWS_PROFILE: "other" }), { HOME: home, AWS_PROFILE: "other" });
  assert.deepEqual([other.accessKeyId, other.sessionToken], ["OTHERKEY", "tok"]);
  const cfg = loc("s3://bkt?profile=cfg", { HOME: home });
  assert.equal(cfg.region, "eu-north-1", "the profile's region from the config file");
  assert.equal(resolveCredentials(cfg, { HOME: home }).accessKeyId, "CFGKEY");
  const moved = tempDir("cpr-aws-");
  writeFileSync(join(moved, "creds"), "[default]\naws_access_key_id = MOVEDKEY\naws_secret_access_key = s\n");
  const menv = { HOME: tempDir("cpr-home-"), AWS_SHARED_CREDENTIALS_FILE: join(moved, "creds") };
  assert.equal(resolveCredentials(loc("s3://bkt", menv), menv).accessKeyId, "MOVEDKEY");

  const empty = { HOME: tempDir("cpr-home-") };
  assert.throws(
    () => resolveCredentials(loc("s3://bkt?profile=none", empty), empty),
    (e: unknown) =>
      e instanceof CprError &&
      e.code === "registry.s3-credentials" &&
      /profile none/.test(e.message) &&
      /AWS_ACCESS_KEY_ID/.test(e.hint ?? ""),
  );
});

test("Signature Version 4: AWS's published example (GET object with a Range header)", () => {
  const signed = signV4({
    method: "GET",
    url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
    headers: { Range: "bytes=0-9" },
    payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", source: "test" },
    now: new Date("2013-05-24T00:00:00Z"),
  });
  assert.equal(
    signed.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
  assert.equal(signed["x-amz-date"], "20130524T000000Z");
});
