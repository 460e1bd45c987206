// read-docs.mjs - reads a multi-document YAML stream (kubectl kustomize output) from stdin into
// plain objects; shared by validate.mjs and policy.mjs. Parse errors are returned, not thrown.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// Returns { objects: [{ obj, index }], errors: [string] }; empty documents are skipped.
export function readDocs(text = readFileSync(0, "utf8")) {
    const objects = [];
    const errors = [];
    parseAllDocuments(text).forEach((doc, index) => {
        if (doc.errors.length > 0) {
            errors.push(`document ${index + 1}: ${doc.errors.map((e) => e.message).join("; ")}`);
            return;
        }
        const obj = doc.toJS({ maxAliasCount: 100 });
        if (obj === null || obj === undefined)
            return;
        if (typeof obj !== "object" || Array.isArray(obj)) {
            errors.push(`document ${index + 1}: not a mapping`);
            return;
        }
        objects.push({ obj, index });
    });
    return { objects, errors };
}

// "Deployment/app" or "Deployment/app (namespace xdcr-east)" for messages.
export function describe(obj) {
    const kind = obj?.kind ?? "(no kind)";
    const name = obj?.metadata?.name ?? "(no name)";
    const ns = obj?.metadata?.namespace;
    return ns ? `${kind}/${name} (namespace ${ns})` : `${kind}/${name}`;
}
