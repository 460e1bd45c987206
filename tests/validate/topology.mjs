// topology.mjs - cross-checks the overlays (one per DC) against each other, from the
// summary.json files that `policy.mjs --extract DIR` writes for each rendered overlay:
// every DC has one forwarder origin and one consumer; origins are unique; each consumer applies
// exactly the other DCs' origins, from the topics their forwarders publish to, in a consumer
// group of its own. Exits 1 listing the problems.
//
//   node topology.mjs east=DIR1/summary.json west=DIR2/summary.json
import { readFileSync } from "node:fs";

const problems = [];
const dcs = process.argv.slice(2).map((arg) => {
    const eq = arg.indexOf("=");
    if (eq <= 0) {
        console.error("usage: topology.mjs DC=summary.json ...");
        process.exit(2);
    }
    return { dc: arg.slice(0, eq), entries: JSON.parse(readFileSync(arg.slice(eq + 1), "utf8")) };
});
if (dcs.length < 2)
    problems.push(`need at least two DCs, got ${dcs.length}`);

const list = (s) => String(s ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "");
const defaultTopic = (o) => `xdcr.${o}.changes`;

for (const d of dcs) {
    const fwd = d.entries.filter((e) => e.daemon === "forwarder");
    const cons = d.entries.filter((e) => e.daemon === "consumer");
    const origins = [...new Set(fwd.map((e) => e.config.origin))];
    if (fwd.length === 0 || origins.length !== 1 || !origins[0])
        problems.push(`${d.dc}: expected forwarders of exactly one origin, found ${JSON.stringify(origins)}`);
    if (cons.length !== 1)
        problems.push(`${d.dc}: expected one consumer, found ${cons.length}`);
    d.origin = origins[0];
    d.topics = [...new Set(fwd.map((e) => e.config.topic ?? defaultTopic(e.config.origin)))];
    if (d.topics.length !== 1)
        problems.push(`${d.dc}: forwarders of origin ${d.origin} publish to different topics ${JSON.stringify(d.topics)}`);
    d.consumer = cons[0]?.config;
}

const seen = new Map();
for (const d of dcs) {
    if (!d.origin)
        continue;
    if (seen.has(d.origin))
        problems.push(`origin ${d.origin} is used by both ${seen.get(d.origin)} and ${d.dc}`);
    seen.set(d.origin, d.dc);
}

const groups = new Map();
for (const d of dcs) {
    const c = d.consumer;
    if (!c)
        continue;
    if (c.origin !== d.origin)
        problems.push(`${d.dc}: the consumer's origin ${c.origin} is not the DC's forwarder origin ${d.origin}`);
    const want = dcs.filter((x) => x !== d && x.origin).map((x) => x.origin).sort();
    const have = list(c.origins).sort();
    if (JSON.stringify(want) !== JSON.stringify(have))
        problems.push(`${d.dc}: the consumer applies origins ${JSON.stringify(have)}, the other DCs are ${JSON.stringify(want)}`);
    for (const o of have) {
        const src = dcs.find((x) => x.origin === o);
        const topic = String(c["topic.template"]).replaceAll("{origin}", o);
        if (src && !src.topics.includes(topic))
            problems.push(`${d.dc}: the consumer reads origin ${o} from ${topic}, its forwarder publishes to ${src.topics.join(", ")}`);
    }
    const group = c["group.id"] ?? `xdcr-${c.origin}`;
    if (groups.has(group))
        problems.push(`consumer group ${group} is used by both ${groups.get(group)} and ${d.dc}`);
    groups.set(group, d.dc);
}

for (const p of problems)
    console.error(`topology: ${p}`);
if (problems.length > 0)
    process.exit(1);
console.log(`topology ok: ${dcs.map((d) => `${d.dc} (origin ${d.origin})`).join(", ")}`);
