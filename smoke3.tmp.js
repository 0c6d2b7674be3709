const { AuditClient } = require('./dist/producer');
(async () => {
  const c = new AuditClient({ topic: 'smoke.events', sourceService: 'smoke' });
  for (let i = 0; i < 1000; i++) c.record({ objectType: 'invoice', objectId: i % 10, action: 'update', occurredAt: Date.UTC(2026,0,1) + i * 300000, changes: { n: { old: i - 1, new: i } } });
  console.log('flushed', await c.flush(20000)); await c.close(); console.log(c.stats());
})();
