// Validates rendered Kubernetes objects against Kubernetes' own OpenAPI schemas, with the npm
// packages kubernetes-models and @kubernetes-models/prometheus-operator (pinned and installed
// under tools/k8s by scripts/setup.sh). Used by tests/e2e/helm_chart_test.py.
//
//   node k8s_validate.mjs MODULES_DIR < objects.json
//
// objects.json is a JSON array of objects (helm template's output, parsed). Prints one line per
// object ("ok: Kind/name" or "invalid: Kind/name: <errors>") and exits 0 when all are valid,
// 1 when any is invalid or of a kind no package knows, 2 on bad usage.
//
// Besides types, required fields and formats, unknown fields are refused, as `kubectl apply`
// (strict field validation) refuses them. The packages' compiled validators do not report them
// (Kubernetes' schemas allow extra properties), so the validator runs on a proxy that records
// which properties it reads: a field of an object it never enumerates (a struct, not a map such
// as labels or resources) and never reads is one the schema does not know.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
if (!modules || !existsSync(join(modules, "kubernetes-models"))) {
  console.error(`usage: node k8s_validate.mjs MODULES_DIR < objects.json ` +
                `(MODULES_DIR holds kubernetes-models; scripts/setup.sh installs it)`);
  process.exit(2);
}

// apiVersion "apps/v1" -> kubernetes-models/apps/v1; "v1" -> kubernetes-models/v1; CRDs of the
// Prometheus Operator come from their own package.
function moduleFile(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") {
    return join(modules, "@kubernetes-models", "prometheus-operator", group, version,
                `${kind}.js`);
  }
  return join(modules, "kubernetes-models", group || "", version, `${kind}.js`);
}

function unknownFields(obj, validate) {
  const records = new Map();  // object -> {path, read: Set, enumerated}
  const track = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    let rec = records.get(value);
    if (!rec) {
      rec = { path, read: new Set(), enumerated: false };
      records.set(value, rec);
    }
    return new Proxy(value, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof prop !== "string" || !Object.hasOwn(target, prop)) return v;
        rec.read.add(prop);
        return track(v, `${path}/${prop}`);
      },
      has(target, prop) {
        rec.read.add(prop);
        return Reflect.has(target, prop);
      },
      ownKeys(target) {
        rec.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  let error = null;
  try {
    validate(track(obj, ""));
  } catch (e) {
    error = e;  // reported with the unknown fields: the validators collect all errors
  }
  const unknown = [];
  for (const [value, rec] of records) {
    if (Array.isArray(value) || rec.enumerated) continue;
    for (const key of Object.keys(value)) {
      if (!rec.read.has(key)) unknown.push(`${rec.path}/${key}`);
    }
  }
  return { error, unknown };
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const obj of objects) {
  const label = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const file = moduleFile(obj.apiVersion ?? "", obj.kind ?? "");
  if (!existsSync(file)) {
    console.log(`invalid: ${label}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    failed++;
    continue;
  }
  const Kind = (await import(pathToFileURL(file).href))[obj.kind];
  // The model's validate() runs the schema's validator on `this`: here, the tracking proxy.
  const { error, unknown } =
      unknownFields(obj, (tracked) => Kind.prototype.validate.call(tracked));
  const details = [];
  if (error) {
    const errors = (error.errors ?? []).map((x) => `${x.instancePath || "/"} ${x.message}`);
    details.push(...(errors.length ? [...new Set(errors)] : [error.message]));
  }
  if (unknown.length) details.push(`unknown field(s) ${unknown.join(", ")}`);
  if (details.length) {
    console.log(`invalid: ${label}: ${details.join("; ")}`);
    failed++;
  } else {
    console.log(`ok: ${label}`);
  }
}
process.exit(failed ? 1 : 0);
