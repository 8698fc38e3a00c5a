// The TypeScript merge patch (js/src/link/core/merge-patch.ts), which the
// TypeScript store still uses, against the cases shared with the Rust core
// (tests/fixtures/merge_patch_cases.json). Pure Node. It goes with the
// TypeScript store.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { apply, applyInPlace, applyMergePatch, compose, diff, sameJson } from "../dist/link/core/merge-patch.js";

describe("merge patches", () => {
  const cases = JSON.parse(readFileSync(new URL("../../tests/fixtures/merge_patch_cases.json", import.meta.url), "utf8"));

  test("apply agrees with the Rust cases, in place or not", () => {
    assert.ok(cases.apply.length >= 10);
    for (const c of cases.apply) {
      const target = JSON.stringify(c.target);
      assert.ok(sameJson(apply(c.target, c.patch), c.result), JSON.stringify(c));
      assert.equal(JSON.stringify(c.target), target, "apply leaves its target alone");
      assert.ok(sameJson(applyMergePatch(c.target, c.patch), c.result));
      const mine = JSON.parse(target);
      const patch = JSON.parse(JSON.stringify(c.patch));
      const out = applyInPlace(mine, patch);
      assert.ok(sameJson(out, c.result), JSON.stringify(c));
      // Nothing of the patch is shared with the result.
      if (out !== null && typeof out === "object") {
        const before = JSON.stringify(patch);
        const touch = (v) => {
          if (v && typeof v === "object") for (const k of Object.keys(v)) (typeof v[k] === "object" && v[k] ? touch(v[k]) : (v[k] = "changed"));
        };
        touch(out);
        assert.equal(JSON.stringify(patch), before);
      }
    }
  });

  test("compose agrees with the Rust cases", () => {
    for (const c of cases.compose) {
      const got = compose(c.first, c.second);
      if (c.none) assert.equal(got, undefined, JSON.stringify(c));
      else assert.ok(sameJson(got, c.result), JSON.stringify(c));
    }
  });

  test("diff agrees with the Rust cases and leads to the new value", () => {
    for (const c of cases.diff) {
      const patch = diff(c.old, c.new);
      assert.ok(sameJson(patch, c.diff), `${JSON.stringify(c)} gave ${JSON.stringify(patch)}`);
      assert.ok(sameJson(apply(c.old, patch), c.applied ?? c.new), JSON.stringify(c));
    }
  });

  test("__proto__ keys are plain keys", () => {
    const out = apply({}, JSON.parse('{"__proto__":{"polluted":1}}'));
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(({}).polluted, undefined);
    assert.deepEqual(Object.keys(out), ["__proto__"]);
  });
});
