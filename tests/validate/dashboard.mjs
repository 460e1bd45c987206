// dashboard.mjs - checks the Grafana dashboard JSON (structure, panel ids, layout, datasource,
// template variables) and prints every PromQL expression of it as a Prometheus recording rule,
// with Grafana's variables replaced by sample values, so that `promtool check rules` parses
// them offline. Exits 1 listing the problems.
//
//   node dashboard.mjs deploy/grafana/xdcr-dashboard.json [--out dashboard-rules.yaml]
//   promtool check rules dashboard-rules.yaml
import { readFileSync, writeFileSync } from "node:fs";
import { stringify } from "yaml";

// Grafana's built-in variables, with values that keep the expression valid PromQL.
const BUILTINS = {
    __rate_interval: "5m",
    __interval: "1m",
    __range: "1h",
    __interval_ms: "60000",
    __range_s: "3600",
    __range_ms: "3600000",
};

const args = process.argv.slice(2);
const outIdx = args.indexOf("--out");
const outPath = outIdx >= 0 ? args[outIdx + 1] : null;
const path = args.find((a, i) => !a.startsWith("--") && (outIdx < 0 || i !== outIdx + 1));
if (!path || (outIdx >= 0 && !outPath)) {
    console.error("usage: dashboard.mjs DASHBOARD.json [--out RULES.yaml]");
    process.exit(2);
}

const problems = [];
let dash;
try {
    dash = JSON.parse(readFileSync(path, "utf8"));
} catch (e) {
    console.error(`dashboard: ${path}: ${e.message}`);
    process.exit(1);
}

for (const key of ["uid", "title", "schemaVersion", "panels", "templating"])
    if (dash[key] === undefined)
        problems.push(`missing top-level "${key}"`);

const vars = new Map();
for (const v of dash.templating?.list ?? []) {
    if (typeof v.name !== "string")
        problems.push("a template variable has no name");
    else
        vars.set(v.name, v);
}
const dsVar = [...vars.values()].find((v) => v.type === "datasource" && v.query === "prometheus");
if (!dsVar)
    problems.push("no datasource template variable of type prometheus");
const dsRef = dsVar ? `\${${dsVar.name}}` : null;

function checkDatasource(where, ds) {
    if (!ds || ds.type !== "prometheus" || ds.uid !== dsRef)
        problems.push(`${where}: datasource must be {type: prometheus, uid: ${dsRef}}`);
}

// Replace $name, ${name}, ${name:fmt} and [[name]] by sample values; unknown names are errors.
function substitute(where, expr) {
    return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (m, a, b, c) => {
        const name = a ?? b ?? c;
        if (Object.hasOwn(BUILTINS, name))
            return BUILTINS[name];
        if (vars.has(name))
            return ".*"; // query variables are used inside =~ matchers
        problems.push(`${where}: unknown variable ${m}`);
        return m;
    });
}

const rules = [];
const ids = new Set();
const layout = [];

function visit(panel, where) {
    if (typeof panel.id !== "number")
        problems.push(`${where}: panel without a numeric id`);
    else if (ids.has(panel.id))
        problems.push(`${where}: duplicate panel id ${panel.id}`);
    else
        ids.add(panel.id);
    if (!panel.title)
        problems.push(`${where}: panel without a title`);
    const g = panel.gridPos;
    if (!g || [g.x, g.y, g.w, g.h].some((n) => !Number.isInteger(n) || n < 0) || g.x + g.w > 24 || g.w === 0)
        problems.push(`${where}: bad gridPos ${JSON.stringify(g)}`);
    else
        layout.push({ where, ...g });
    if (panel.type === "row") {
        (panel.panels ?? []).forEach((p, i) => visit(p, `${where} > panel ${i} "${p.title ?? ""}"`));
        return;
    }
    checkDatasource(where, panel.datasource);
    const targets = panel.targets ?? [];
    if (targets.length === 0)
        problems.push(`${where}: no targets`);
    const refIds = new Set();
    for (const t of targets) {
        const tw = `${where} target ${t.refId ?? "?"}`;
        if (!t.refId || refIds.has(t.refId))
            problems.push(`${tw}: missing or duplicate refId`);
        refIds.add(t.refId);
        checkDatasource(tw, t.datasource ?? panel.datasource);
        if (typeof t.expr !== "string" || t.expr.trim() === "") {
            problems.push(`${tw}: empty expr`);
            continue;
        }
        rules.push({
            record: `xdcr_dashboard:panel_${panel.id}_${t.refId}`,
            expr: substitute(tw, t.expr),
        });
    }
}

(dash.panels ?? []).forEach((p, i) => visit(p, `panel ${i} "${p.title ?? ""}"`));

// Panels on the top level must not overlap.
for (let i = 0; i < layout.length; i++)
    for (let j = i + 1; j < layout.length; j++) {
        const a = layout[i], b = layout[j];
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
            problems.push(`${a.where} overlaps ${b.where}`);
    }

for (const v of vars.values())
    if (v.type === "query" && typeof (v.query?.query ?? v.query) !== "string")
        problems.push(`template variable ${v.name}: no query`);

if (rules.length === 0)
    problems.push("no PromQL expressions found");
for (const p of problems)
    console.error(`dashboard: ${p}`);
if (problems.length > 0)
    process.exit(1);
const text = stringify({ groups: [{ name: "xdcr-dashboard-expressions", rules }] }, { lineWidth: 0 });
if (outPath)
    writeFileSync(outPath, text);
else
    process.stdout.write(text);
console.error(`dashboard ok: ${ids.size} panels, ${rules.length} expressions`);
