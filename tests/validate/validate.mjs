// validate.mjs - validates every object of a multi-document YAML stream on stdin against the
// schema of its model class from kubernetes-models or @kubernetes-models/prometheus-operator.
// Exits 1 naming each failing object (kind/name) and its errors; an object whose
// apiVersion/kind has no model class is an error too.
//
//   kubectl kustomize deploy/k8s/overlays/east | node validate.mjs
import { describe, readDocs } from "./read-docs.mjs";

// API groups served by a package other than kubernetes-models.
const GROUP_PACKAGES = {
    "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function modelPath(apiVersion, kind) {
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    const pkg = GROUP_PACKAGES[group] ?? "kubernetes-models";
    return group === "" ? `${pkg}/${version}/${kind}` : `${pkg}/${group}/${version}/${kind}`;
}

async function loadModel(apiVersion, kind) {
    const path = modelPath(apiVersion, kind);
    try {
        const mod = await import(path);
        if (typeof mod[kind] === "function")
            return mod[kind];
    } catch (e) {
        if (e?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && e?.code !== "ERR_MODULE_NOT_FOUND")
            throw e;
    }
    return null;
}

function formatValidationError(e) {
    if (Array.isArray(e?.errors) && e.errors.length > 0)
        return e.errors
            .map((x) => `${x.instancePath || "/"} ${x.message}${x.params ? " " + JSON.stringify(x.params) : ""}`)
            .join("; ");
    return e?.message ?? String(e);
}

const { objects, errors } = readDocs();
const failures = [...errors];
const seen = new Map();

for (const { obj, index } of objects) {
    const what = describe(obj);
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
        failures.push(`document ${index + 1} (${what}): apiVersion and kind are required`);
        continue;
    }
    if (typeof obj.metadata?.name !== "string" || obj.metadata.name === "") {
        failures.push(`document ${index + 1} (${what}): metadata.name is required`);
        continue;
    }
    const key = `${obj.apiVersion} ${obj.kind} ${obj.metadata.namespace ?? ""} ${obj.metadata.name}`;
    if (seen.has(key)) {
        failures.push(`${what}: defined twice (documents ${seen.get(key) + 1} and ${index + 1})`);
        continue;
    }
    seen.set(key, index);
    const Model = await loadModel(obj.apiVersion, obj.kind);
    if (Model === null) {
        failures.push(`${what}: no model class for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
        continue;
    }
    try {
        new Model(obj).validate();
    } catch (e) {
        failures.push(`${what}: ${formatValidationError(e)}`);
    }
}

if (objects.length === 0 && failures.length === 0)
    failures.push("no objects on stdin");
for (const f of failures)
    console.error(`invalid: ${f}`);
if (failures.length > 0) {
    console.error(`${failures.length} error(s) in ${objects.length} object(s)`);
    process.exit(1);
}
console.log(`${objects.length} object(s) valid`);
