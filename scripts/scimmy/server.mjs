// A peer for the benchmarks: SCIMMY with its Express routers, keeping users and groups in memory,
// as its documentation shows. Not part of scimserver; scripts/bench.sh peer installs its packages
// into a temporary directory and starts it. Usage: node server.mjs PORT TOKEN
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const [port, token] = process.argv.slice(2);
const stores = {User: new Map(), Group: new Map()};
const unique = {User: ["userName", "externalId"], Group: ["displayName", "externalId"]};
const byKey = {User: new Map(), Group: new Map()}; // "attr\0value" -> id, for eq lookups

// An equality filter on an indexed attribute is answered from byKey; any other from a scan.
function find(type, filter) {
  const all = stores[type];
  if (filter?.length === 1) {
    const [[attr, cond]] = Object.entries(filter[0]);
    const name = unique[type].find((u) => u.toLowerCase() === attr.toLowerCase());
    if (name && cond?.[0] === "eq" && Object.keys(filter[0]).length === 1) {
      const id = byKey[type].get(name + "\0" + String(cond[1]).toLowerCase());
      return id ? [all.get(id)] : [];
    }
  }
  return filter ? filter.match([...all.values()]) : [...all.values()];
}

function declare(Resource, type) {
  const all = stores[type];
  SCIMMY.Resources.declare(Resource)
    .ingress((resource, instance) => {
      const now = new Date().toISOString();
      const old = resource.id ? all.get(resource.id) : undefined;
      if (resource.id && !old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      const id = resource.id ?? crypto.randomUUID();
      const record = {...JSON.parse(JSON.stringify(instance)), id,
        meta: {created: old?.meta.created ?? now, lastModified: now, version: `W/"${(old ? Number(old.meta.version.slice(3, -1)) : 0) + 1}"`}};
      for (const attr of unique[type]) {
        const key = record[attr] === undefined ? undefined : attr + "\0" + String(record[attr]).toLowerCase();
        const owner = key && byKey[type].get(key);
        if (owner && owner !== id && attr !== "externalId") throw new SCIMMY.Types.Error(409, "uniqueness", `${attr} is already taken`);
        if (old?.[attr] !== undefined) byKey[type].delete(attr + "\0" + String(old[attr]).toLowerCase());
        if (key) byKey[type].set(key, id);
      }
      all.set(id, record);
      return record;
    })
    .egress((resource) => {
      if (!resource.id) return find(type, resource.filter);
      const record = all.get(resource.id);
      if (!record) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      return record;
    })
    .degress((resource) => {
      const record = all.get(resource.id);
      if (!record) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      for (const attr of unique[type]) if (record[attr] !== undefined) byKey[type].delete(attr + "\0" + String(record[attr]).toLowerCase());
      all.delete(resource.id);
    });
}
declare(SCIMMY.Resources.User, "User");
declare(SCIMMY.Resources.Group, "Group");
SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);

const app = express();
app.get("/readyz", (req, res) => res.send("ok"));
app.use("/scim/v2", new SCIMMYRouters({type: "bearer", docUri: "http://127.0.0.1/",
  handler: (req) => {
    if (req.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
    return "bench";
  }}));
app.listen(Number(port), "127.0.0.1");
