// policy.mjs - asserts xdcr's deployment rules (issue 7 item 2) on the rendered manifests of one
// overlay, read as multi-document YAML from stdin. Exits 1 listing every violation as
// "[rule] kind/name: what is wrong".
//
//   kubectl kustomize deploy/k8s/overlays/east | node policy.mjs
//   ... | node policy.mjs --self-test     also prove that each rule catches a broken variant
//   ... | node policy.mjs --extract DIR   also write each daemon's effective config file and
//                                         environment to DIR (for `--check-config`), and
//                                         summary.json (for topology.mjs)
//
// Rules:
//   sidecar      the forwarder is an initContainers entry with restartPolicy: Always
//   probes       forwarder and consumer have startup and liveness probes on /livez
//   readiness    the forwarder sidecar's readiness can never take the pod out of service
//   consumer     the consumer is a Deployment with replicas 1 and strategy Recreate
//   security     every container: non-root, read-only root fs, no privilege escalation,
//                capabilities drop ALL, seccomp RuntimeDefault; no host namespaces
//   secrets      no Secret objects, no literal secret values in env or ConfigMaps
//   grace        terminationGracePeriodSeconds >= drain.timeout + margin
//   http         http.listen reachable from the kubelet and on the declared container port
//   resources    daemon containers request cpu and memory and limit memory
//   image        every image has a tag or digest, not latest
//   pdb          every daemon's pods are covered by a PodDisruptionBudget
//   service      every daemon's pods are selected by a Service exposing the HTTP port
//   monitor      every daemon's pods are scraped by a PodMonitor or a ServiceMonitor
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, readDocs } from "./read-docs.mjs";

const GRACE_MARGIN_S = 10;
const DEFAULTS = {
    forwarder: { "drain.timeout": "10s", "http.listen": "127.0.0.1:9187" },
    consumer: { "drain.timeout": "10s", "http.listen": "127.0.0.1:9188", "topic.template": "xdcr.{origin}.changes" },
};
// Keys whose effective value (default < file < environment < flag) is resolved, for the rules
// and for the --extract summary that cross-checks the overlays.
const KEYS = ["origin", "origins", "topic", "topic.template", "group.id", "kafka.bootstrap.servers",
    "drain.timeout", "http.listen"];
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY)/i;
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]);

// ---- helpers --------------------------------------------------------------------------------

function podSpecOf(obj) {
    switch (obj.kind) {
    case "Pod":
        return { spec: obj.spec, labels: obj.metadata?.labels ?? {} };
    case "CronJob":
        return {
            spec: obj.spec?.jobTemplate?.spec?.template?.spec,
            labels: obj.spec?.jobTemplate?.spec?.template?.metadata?.labels ?? {},
        };
    default:
        return { spec: obj.spec?.template?.spec, labels: obj.spec?.template?.metadata?.labels ?? {} };
    }
}

// Which xdcr daemon a container runs, or null.
function daemonOf(c) {
    const words = [c.name, ...(c.command ?? []), ...(c.args ?? [])].map(String);
    if (words.some((w) => /(^|\/)xdcr-forwarder$/.test(w)))
        return "forwarder";
    if (words.some((w) => /(^|\/)xdcr-consumer$/.test(w)))
        return "consumer";
    return null;
}

function selectorMatches(selector, labels) {
    if (!selector)
        return false;
    const ml = selector.matchLabels ?? {};
    const exprs = selector.matchExpressions ?? [];
    if (Object.keys(ml).length === 0 && exprs.length === 0)
        return false; // an empty selector selecting everything is not what we want here
    for (const [k, v] of Object.entries(ml))
        if (labels[k] !== v)
            return false;
    for (const e of exprs) {
        const has = Object.hasOwn(labels, e.key);
        const ok = {
            In: () => has && (e.values ?? []).includes(labels[e.key]),
            NotIn: () => !has || !(e.values ?? []).includes(labels[e.key]),
            Exists: () => has,
            DoesNotExist: () => !has,
        }[e.operator];
        if (!ok || !ok())
            return false;
    }
    return true;
}

// A Service selector is a plain map.
function mapSelects(map, labels) {
    return map && Object.keys(map).length > 0 && Object.entries(map).every(([k, v]) => labels[k] === v);
}

function sameNamespace(a, b) {
    return (a.metadata?.namespace ?? "") === (b.metadata?.namespace ?? "");
}

function monitorNamespaceOk(mon, pod) {
    const ns = mon.spec?.namespaceSelector;
    if (ns?.any)
        return true;
    if (Array.isArray(ns?.matchNames) && ns.matchNames.length > 0)
        return ns.matchNames.includes(pod.metadata?.namespace ?? "");
    return sameNamespace(mon, pod);
}

export function parseDurationMs(s) {
    const m = /^\s*(\d+)\s*(ms|s|m|h|d)?\s*$/.exec(String(s));
    if (!m)
        return NaN;
    const mult = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 }[m[2] ?? "ms"];
    return Number(m[1]) * mult;
}

// key = value lines as the daemons read them (comments, quotes).
function parseConfig(text) {
    const out = {};
    for (const raw of String(text).split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#"))
            continue;
        const m = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(line);
        if (!m)
            continue;
        let v = m[2];
        if (v.startsWith('"') || v.startsWith("'")) {
            const q = v[0];
            const end = v.indexOf(q, 1);
            v = end > 0 ? v.slice(1, end) : v.slice(1);
        } else {
            v = v.replace(/(^|\s)#.*$/, "").trim();
        }
        out[m[1]] = v;
    }
    return out;
}

function configPathOf(c) {
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map(String);
    for (let i = 0; i < argv.length; i++) {
        if ((argv[i] === "--config" || argv[i] === "-c") && i + 1 < argv.length)
            return argv[i + 1];
        if (argv[i].startsWith("--config="))
            return argv[i].slice("--config=".length);
    }
    return (c.env ?? []).find((e) => e.name === "XDCR_CONFIG")?.value ?? null;
}

function flagsOf(c) {
    const out = {};
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map(String);
    for (let i = 0; i < argv.length; i++) {
        const m = /^--([a-z][a-z0-9_.]*)=(.*)$/.exec(argv[i]);
        if (m && m[1] !== "config")
            out[m[1]] = m[2];
    }
    return out;
}

// ---- the effective configuration of a daemon container ----------------------------------------

function envVarName(key) {
    if (key.startsWith("kafka."))
        return "XDCR_KAFKA_" + key.slice(6).replace(/\./g, "_").toUpperCase();
    return "XDCR_" + key.replace(/[.-]/g, "_").toUpperCase();
}

function makeIndex(objects) {
    const byKind = new Map();
    for (const o of objects) {
        if (!byKind.has(o.kind))
            byKind.set(o.kind, []);
        byKind.get(o.kind).push(o);
    }
    return (kind) => byKind.get(kind) ?? [];
}

function findConfigMap(idx, ns, name) {
    return idx("ConfigMap").find((cm) => cm.metadata?.name === name && (cm.metadata?.namespace ?? "") === ns);
}

// { file: text|null, fileError, env: [[name, value, fromSecret]], config: merged key->value }
function effectiveConfig(idx, workload, spec, c, daemon) {
    const ns = workload.metadata?.namespace ?? "";
    const res = { file: null, fileError: null, env: [], config: { ...DEFAULTS[daemon] } };
    const path = configPathOf(c);
    if (path) {
        const mount = (c.volumeMounts ?? [])
            .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/?$/, "/")))
            .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
        const vol = mount && (spec.volumes ?? []).find((v) => v.name === mount.name);
        if (!vol?.configMap) {
            res.fileError = `config file ${path} is not on a mounted ConfigMap`;
        } else {
            const cm = findConfigMap(idx, ns, vol.configMap.name);
            let key = mount.subPath ?? path.slice(mount.mountPath.replace(/\/?$/, "/").length);
            const item = (vol.configMap.items ?? []).find((it) => it.path === key);
            if (item)
                key = item.key;
            else if (vol.configMap.items)
                key = null;
            if (!cm || key === null || cm.data?.[key] === undefined)
                res.fileError = `config file ${path} not found in ConfigMap ${vol.configMap.name}`;
            else
                res.file = cm.data[key];
        }
    }
    if (res.file !== null)
        Object.assign(res.config, parseConfig(res.file));
    const envMap = new Map();
    for (const ef of c.envFrom ?? []) {
        if (ef.configMapRef) {
            const cm = findConfigMap(idx, ns, ef.configMapRef.name);
            for (const [k, v] of Object.entries(cm?.data ?? {}))
                envMap.set((ef.prefix ?? "") + k, [v, false]);
        } else if (ef.secretRef) {
            envMap.set(`(all keys of Secret ${ef.secretRef.name})`, ["", true]);
        }
    }
    for (const e of c.env ?? []) {
        if (e.value !== undefined)
            envMap.set(e.name, [String(e.value), false]);
        else if (e.valueFrom?.secretKeyRef)
            envMap.set(e.name, ["", true]);
        else if (e.valueFrom?.configMapKeyRef) {
            const cm = findConfigMap(idx, ns, e.valueFrom.configMapKeyRef.name);
            envMap.set(e.name, [cm?.data?.[e.valueFrom.configMapKeyRef.key] ?? "", false]);
        }
    }
    res.env = [...envMap.entries()].map(([k, [v, s]]) => [k, v, s]);
    for (const key of KEYS) {
        const ev = envMap.get(envVarName(key));
        if (ev && !ev[1])
            res.config[key] = ev[0];
    }
    Object.assign(res.config, flagsOf(c));
    return res;
}

// ---- the rules --------------------------------------------------------------------------------

export function check(objects) {
    const v = [];
    const add = (rule, obj, msg) => v.push({ rule, text: `[${rule}] ${describe(obj)}: ${msg}` });
    const idx = makeIndex(objects);
    const daemonPods = []; // { obj, spec, labels, daemon, container }
    const extracted = [];

    for (const obj of objects) {
        if (obj.kind === "Secret")
            add("secrets", obj, "Secret objects must not be part of the manifests: reference Secrets created out of band");
        if (obj.kind === "ConfigMap") {
            for (const [k, val] of Object.entries(obj.data ?? {})) {
                if (SECRET_NAME.test(k) && !/_FILE$/i.test(k) && String(val) !== "")
                    add("secrets", obj, `key ${k} looks like a literal secret`);
                for (const line of String(val).split("\n")) {
                    const t = line.trim();
                    if (t.startsWith("#"))
                        continue;
                    if (/^[A-Za-z0-9_.-]*(password|passwd|secret|token)[A-Za-z0-9_.-]*\s*=\s*\S/i.test(t) &&
                        !/^[A-Za-z0-9_.-]*_file\s*=/i.test(t))
                        add("secrets", obj, `key ${k} sets a secret literally: ${t.split("=")[0].trim()}`);
                    if (/(^|[\s'"])password\s*=\s*[^\s'"]/i.test(t) && !/_file\s*=/i.test(t.split("=")[0]))
                        add("secrets", obj, `key ${k} holds a password in a connection string`);
                }
            }
        }
        if (!WORKLOAD_KINDS.has(obj.kind))
            continue;
        const { spec, labels } = podSpecOf(obj);
        if (!spec)
            continue;
        const sc = spec.securityContext ?? {};
        for (const h of ["hostNetwork", "hostPID", "hostIPC"])
            if (spec[h] === true)
                add("security", obj, `${h} must not be used`);
        const all = [
            ...(spec.initContainers ?? []).map((c) => ({ c, init: true })),
            ...(spec.containers ?? []).map((c) => ({ c, init: false })),
        ];
        for (const { c, init } of all) {
            const where = `${init ? "initContainer" : "container"} ${c.name}`;
            const csc = c.securityContext ?? {};
            if ((csc.runAsNonRoot ?? sc.runAsNonRoot) !== true)
                add("security", obj, `${where}: runAsNonRoot must be true`);
            if ((csc.runAsUser ?? sc.runAsUser) === 0)
                add("security", obj, `${where}: runAsUser must not be 0`);
            if (csc.readOnlyRootFilesystem !== true)
                add("security", obj, `${where}: readOnlyRootFilesystem must be true`);
            if (csc.allowPrivilegeEscalation !== false)
                add("security", obj, `${where}: allowPrivilegeEscalation must be false`);
            if (csc.privileged === true)
                add("security", obj, `${where}: must not be privileged`);
            if (!(csc.capabilities?.drop ?? []).includes("ALL"))
                add("security", obj, `${where}: capabilities must drop ALL`);
            if ((csc.capabilities?.add ?? []).length > 0)
                add("security", obj, `${where}: must not add capabilities`);
            const seccomp = (csc.seccompProfile ?? sc.seccompProfile)?.type;
            if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
                add("security", obj, `${where}: seccompProfile must be RuntimeDefault`);
            const img = String(c.image ?? "");
            if (!/@sha256:[0-9a-f]{64}$/.test(img) && !/:[^/:]+$/.test(img))
                add("image", obj, `${where}: image ${img || "(none)"} has no tag or digest`);
            else if (/:latest$/.test(img))
                add("image", obj, `${where}: image ${img} uses the latest tag`);
            for (const e of c.env ?? [])
                if (e.value !== undefined && SECRET_NAME.test(e.name) && !/_FILE$/i.test(e.name) && String(e.value) !== "")
                    add("secrets", obj, `${where}: env ${e.name} is a literal value; use valueFrom.secretKeyRef`);
            for (const e of c.env ?? [])
                if (e.value !== undefined && /(^|\s)password\s*=/i.test(String(e.value)))
                    add("secrets", obj, `${where}: env ${e.name} holds a password in a connection string`);

            const daemon = daemonOf(c);
            if (!daemon)
                continue;
            daemonPods.push({ obj, spec, labels, daemon, container: c });
            if (daemon === "forwarder") {
                if (!init)
                    add("sidecar", obj, `${where}: the forwarder must be an initContainers entry (native sidecar), not a regular container`);
                else if (c.restartPolicy !== "Always")
                    add("sidecar", obj, `${where}: the forwarder sidecar needs restartPolicy: Always`);
                const rp = c.readinessProbe;
                if (rp && rp.httpGet?.path !== "/livez")
                    add("readiness", obj, `${where}: a sidecar readinessProbe counts for the pod's readiness; remove it (or probe /livez)`);
            }
            if (daemon === "consumer") {
                if (init)
                    add("consumer", obj, `${where}: the consumer must be a regular container`);
                if (obj.kind !== "Deployment")
                    add("consumer", obj, "the consumer must run in a Deployment");
                if (obj.kind === "Deployment") {
                    if (obj.spec?.replicas !== 1)
                        add("consumer", obj, `replicas must be 1 (is ${obj.spec?.replicas ?? "unset"})`);
                    if (obj.spec?.strategy?.type !== "Recreate")
                        add("consumer", obj, "strategy.type must be Recreate (never two consumers at once)");
                }
            }
            const ports = c.ports ?? [];
            for (const kind of ["startupProbe", "livenessProbe"]) {
                const p = c[kind];
                if (!p?.httpGet)
                    add("probes", obj, `${where}: ${kind} must be an httpGet probe on /livez`);
                else if (p.httpGet.path !== "/livez")
                    add("probes", obj, `${where}: ${kind} must probe /livez (needs neither PostgreSQL nor Kafka), not ${p.httpGet.path}`);
                else if (!ports.some((cp) => cp.name === p.httpGet.port || cp.containerPort === p.httpGet.port))
                    add("probes", obj, `${where}: ${kind} port ${p.httpGet.port} is not a port of the container`);
            }
            const r = c.resources ?? {};
            if (!r.requests?.cpu || !r.requests?.memory)
                add("resources", obj, `${where}: requests.cpu and requests.memory must be set`);
            if (!r.limits?.memory)
                add("resources", obj, `${where}: limits.memory must be set`);

            const eff = effectiveConfig(idx, obj, spec, c, daemon);
            extracted.push({ obj, daemon, container: c, eff });
            if (eff.fileError)
                add("http", obj, `${where}: ${eff.fileError}`);
            const drainMs = parseDurationMs(eff.config["drain.timeout"]);
            const grace = spec.terminationGracePeriodSeconds ?? 30;
            if (Number.isNaN(drainMs))
                add("grace", obj, `${where}: cannot read drain.timeout "${eff.config["drain.timeout"]}"`);
            else if (grace * 1000 < drainMs + GRACE_MARGIN_S * 1000)
                add("grace", obj, `terminationGracePeriodSeconds ${grace} must be at least drain.timeout (${drainMs / 1000}s) + ${GRACE_MARGIN_S}s`);
            const listen = String(eff.config["http.listen"] ?? "");
            const m = /^(.*):(\d+)$/.exec(listen);
            if (!m)
                add("http", obj, `${where}: http.listen "${listen}" must be host:port`);
            else {
                const host = m[1].replace(/^\[|\]$/g, "");
                if (!["0.0.0.0", "::", ""].includes(host))
                    add("http", obj, `${where}: http.listen ${listen} is not reachable by the kubelet and Prometheus; use 0.0.0.0:${m[2]}`);
                const named = ports.find((cp) => cp.containerPort === Number(m[2]));
                if (!named)
                    add("http", obj, `${where}: http.listen port ${m[2]} is not declared in the container's ports`);
            }
        }
    }

    if (!daemonPods.some((d) => d.daemon === "forwarder"))
        v.push({ rule: "sidecar", text: "[sidecar] no forwarder container found in any workload" });
    if (!daemonPods.some((d) => d.daemon === "consumer"))
        v.push({ rule: "consumer", text: "[consumer] no consumer container found in any workload" });

    for (const d of daemonPods) {
        const podLike = { metadata: { namespace: d.obj.metadata?.namespace } };
        const httpPort = (d.container.ports ?? []).find((p) => p.containerPort === Number(/:(\d+)$/.exec(
            String(effectiveConfig(idx, d.obj, d.spec, d.container, d.daemon).config["http.listen"]))?.[1]));
        const pdb = idx("PodDisruptionBudget").find((p) => sameNamespace(p, d.obj) && selectorMatches(p.spec?.selector, d.labels));
        if (!pdb)
            add("pdb", d.obj, `no PodDisruptionBudget selects the pods of the ${d.daemon}`);
        const services = idx("Service").filter((s) => sameNamespace(s, d.obj) && mapSelects(s.spec?.selector, d.labels) &&
            (s.spec?.ports ?? []).some((p) => httpPort && (p.targetPort === httpPort.name || p.targetPort === httpPort.containerPort ||
                (p.targetPort === undefined && p.port === httpPort.containerPort))));
        if (services.length === 0)
            add("service", d.obj, `no Service exposes the ${d.daemon}'s HTTP port`);
        const podMon = idx("PodMonitor").some((m) => monitorNamespaceOk(m, podLike) && selectorMatches(m.spec?.selector, d.labels) &&
            (m.spec?.podMetricsEndpoints ?? []).some((e) => httpPort && (e.port === httpPort.name ||
                String(e.targetPort ?? "") === String(httpPort.containerPort)) && (e.path ?? "/metrics") === "/metrics"));
        const svcMon = idx("ServiceMonitor").some((m) => services.some((s) => monitorNamespaceOk(m, podLike) &&
            selectorMatches(m.spec?.selector, s.metadata?.labels ?? {}) &&
            (m.spec?.endpoints ?? []).some((e) => (s.spec?.ports ?? []).some((p) => p.name === e.port ||
                String(e.targetPort ?? "") === String(p.targetPort)) && (e.path ?? "/metrics") === "/metrics")));
        if (!podMon && !svcMon)
            add("monitor", d.obj, `no PodMonitor or ServiceMonitor scrapes the ${d.daemon}'s /metrics`);
    }
    return { violations: v, extracted };
}

// ---- --extract: effective config and environment per daemon container --------------------------

function extract(dir, extracted) {
    mkdirSync(dir, { recursive: true });
    const list = [];
    const summary = [];
    for (const { obj, daemon, container, eff } of extracted) {
        const base = `${obj.metadata?.namespace ?? "default"}.${obj.metadata?.name}.${container.name}`;
        writeFileSync(join(dir, `${base}.conf`), eff.file ?? "");
        const lines = eff.env
            .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
            .map(([k, val, fromSecret]) => `${k}=${fromSecret ? "placeholder-from-secret" : val}`);
        writeFileSync(join(dir, `${base}.env`), lines.join("\n") + (lines.length ? "\n" : ""));
        list.push(`${daemon}\t${base}`);
        summary.push({ daemon, workload: describe(obj), container: container.name,
            config: Object.fromEntries(KEYS.filter((k) => eff.config[k] !== undefined).map((k) => [k, eff.config[k]])) });
    }
    writeFileSync(join(dir, "daemons.tsv"), list.join("\n") + "\n");
    writeFileSync(join(dir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
}

// ---- --self-test: each rule must catch a broken variant of the input ----------------------------

function findDaemon(objs, daemon) {
    for (const o of objs) {
        if (!WORKLOAD_KINDS.has(o.kind))
            continue;
        const { spec } = podSpecOf(o);
        for (const list of ["initContainers", "containers"])
            for (const c of spec?.[list] ?? [])
                if (daemonOf(c) === daemon)
                    return { o, spec, c, list };
    }
    throw new Error(`self-test needs a ${daemon} in the input`);
}

const MUTATIONS = [
    ["sidecar", "forwarder without restartPolicy", (objs) => { delete findDaemon(objs, "forwarder").c.restartPolicy; }],
    ["sidecar", "forwarder as a regular container", (objs) => {
        const { spec, c } = findDaemon(objs, "forwarder");
        spec.initContainers = spec.initContainers.filter((x) => x !== c);
        delete c.restartPolicy;
        spec.containers.push(c);
    }],
    ["readiness", "forwarder readinessProbe on /readyz", (objs) => {
        const { c } = findDaemon(objs, "forwarder");
        c.readinessProbe = { httpGet: { path: "/readyz", port: c.ports[0].name } };
    }],
    ["probes", "forwarder startupProbe on /readyz", (objs) => { findDaemon(objs, "forwarder").c.startupProbe.httpGet.path = "/readyz"; }],
    ["probes", "consumer without livenessProbe", (objs) => { delete findDaemon(objs, "consumer").c.livenessProbe; }],
    ["consumer", "two consumers", (objs) => { findDaemon(objs, "consumer").o.spec.replicas = 2; }],
    ["consumer", "consumer with RollingUpdate", (objs) => { findDaemon(objs, "consumer").o.spec.strategy = { type: "RollingUpdate" }; }],
    ["security", "writable root filesystem", (objs) => { findDaemon(objs, "forwarder").c.securityContext.readOnlyRootFilesystem = false; }],
    ["security", "root user", (objs) => {
        const { spec, c } = findDaemon(objs, "consumer");
        c.securityContext.runAsNonRoot = false;
        spec.securityContext = { ...spec.securityContext, runAsNonRoot: false };
    }],
    ["security", "capabilities kept", (objs) => { findDaemon(objs, "consumer").c.securityContext.capabilities = {}; }],
    ["secrets", "literal SASL password", (objs) => {
        findDaemon(objs, "forwarder").c.env.push({ name: "XDCR_KAFKA_SASL_PASSWORD2", value: "hunter2" });
    }],
    ["secrets", "a Secret object", (objs) => {
        objs.push({ apiVersion: "v1", kind: "Secret", metadata: { name: "leak" }, stringData: { password: "x" } });
    }],
    ["secrets", "password in a ConfigMap", (objs) => {
        const cm = objs.find((o) => o.kind === "ConfigMap");
        cm.data = { ...cm.data, "extra.conf": "kafka.sasl.password = hunter2\n" };
    }],
    ["grace", "grace period below the drain time", (objs) => { findDaemon(objs, "forwarder").spec.terminationGracePeriodSeconds = 5; }],
    ["grace", "drain time raised by a flag", (objs) => { findDaemon(objs, "consumer").c.args.push("--drain.timeout=10m"); }],
    ["http", "loopback http.listen", (objs) => {
        findDaemon(objs, "consumer").c.env.push({ name: "XDCR_HTTP_LISTEN", value: "127.0.0.1:9188" });
    }],
    ["resources", "no memory limit", (objs) => { delete findDaemon(objs, "forwarder").c.resources.limits; }],
    ["image", "latest image", (objs) => { findDaemon(objs, "consumer").c.image = "registry.example.com/xdcr/xdcr:latest"; }],
    ["pdb", "no PodDisruptionBudget", (objs) => { objs.splice(0, objs.length, ...objs.filter((o) => o.kind !== "PodDisruptionBudget")); }],
    ["service", "no Service", (objs) => { objs.splice(0, objs.length, ...objs.filter((o) => o.kind !== "Service")); }],
    ["monitor", "no monitors", (objs) => {
        objs.splice(0, objs.length, ...objs.filter((o) => o.kind !== "PodMonitor" && o.kind !== "ServiceMonitor"));
    }],
];

function selfTest(objects) {
    const failures = [];
    for (const [rule, what, mutate] of MUTATIONS) {
        const objs = structuredClone(objects);
        mutate(objs);
        const { violations } = check(objs);
        if (!violations.some((x) => x.rule === rule))
            failures.push(`self-test: rule ${rule} did not catch: ${what}`);
    }
    return failures;
}

// ---- main -----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const { objects: docs, errors } = readDocs();
const objects = docs.map((d) => d.obj);
const { violations, extracted } = check(objects);
const problems = [...errors, ...violations.map((x) => x.text)];
if (argv.includes("--self-test") && problems.length === 0)
    problems.push(...selfTest(objects));
const ei = argv.indexOf("--extract");
if (ei >= 0) {
    if (!argv[ei + 1]) {
        console.error("usage: policy.mjs [--self-test] [--extract DIR] < manifests.yaml");
        process.exit(2);
    }
    extract(argv[ei + 1], extracted);
}
for (const p of problems)
    console.error(`policy: ${p}`);
if (problems.length > 0) {
    console.error(`${problems.length} policy violation(s)`);
    process.exit(1);
}
console.log(`policy ok: ${objects.length} object(s), ${extracted.length} daemon container(s)` +
    (argv.includes("--self-test") ? `, ${MUTATIONS.length} broken variants caught` : ""));
