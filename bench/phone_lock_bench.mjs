// The app PIN's costs under node's WebCrypto (a phone is slower; Chromium on this machine is
// close to node): deriving the key (PBKDF2 200,000), sealing a village's households at set-up,
// unlocking (unwrap + decrypting every record into memory), and one write through the sealed
// database. Median of 5. Run: node bench/phone_lock_bench.mjs [households]
import { Database } from "../static/js/db.js";
import { PhoneLock } from "../static/js/lock.js";
import { FakeIndexedDB } from "../tests/js/fake-idb.js";

const N = Number(process.argv[2] || 1600);
const storage = { map: new Map(), getItem(k) { return this.map.get(k) ?? null; }, setItem(k, v) { this.map.set(k, String(v)); }, removeItem(k) { this.map.delete(k); } };
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const household = (i) => ({ id: `v1-${String(i).padStart(4, "0")}`, village_id: "v1", head_name: `张${i}`, phone: "13800138000",
  address: `${i}号`, category: "tuopin", members: Array.from({ length: 4 }, (_, m) => ({ name: `张${i}-${m}`, relation: "子女", sex: "male", birth_year: 1980 + m, health: "健康", schooling: "初中", work: "务农" })),
  plots: [{ name: "大田", area_mu: 1.5, east: "水渠", west: "村道", south: "李家", north: "山林", contract_signed: true }], cadre_ids: ["cadre1"], version: 3 });

const setups = [], unlocks = [], writes = [], plainWrites = [];
for (let run = 0; run < 5; run++) {
  const raw = new Database(`bench${run}`, new FakeIndexedDB());
  await raw.tx("households", "readwrite", async (o) => { for (let i = 0; i < N; i++) await o.put("households", household(i).id, household(i)); });
  storage.map.clear();
  const lock = new PhoneLock({ raw, storage });
  lock.applySettings({ required: true });
  let t = performance.now();
  await lock.setup("258036");
  setups.push(performance.now() - t);
  lock.lock();
  t = performance.now();
  await lock.unlock("258036");
  unlocks.push(performance.now() - t);
  t = performance.now();
  for (let i = 0; i < 50; i++) await lock.db.put("drafts", `d${i}`, { id: `d${i}`, answers: { notes: "x".repeat(1000) }, rev: i });
  writes.push((performance.now() - t) / 50);
  const plain = new Database(`plain${run}`, new FakeIndexedDB());
  t = performance.now();
  for (let i = 0; i < 50; i++) await plain.put("drafts", `d${i}`, { id: `d${i}`, answers: { notes: "x".repeat(1000) }, rev: i });
  plainWrites.push((performance.now() - t) / 50);
}
console.log(`households: ${N}`);
console.log(`set-up (PBKDF2 + sealing every record): ${median(setups).toFixed(0)} ms`);
console.log(`unlock (PBKDF2 + unwrap + decrypting every record): ${median(unlocks).toFixed(0)} ms`);
console.log(`one sealed draft write (1 KB): ${median(writes).toFixed(2)} ms; without a PIN: ${median(plainWrites).toFixed(2)} ms`);
