SET lock_timeout = '10s';
DELETE FROM plans WHERE id IN (
  '01a216c1-bf8e-7d99-b752-cb2d286dd79a',
  '01a216c1-bf8f-7ea8-964c-3886ed72bdbe',
  '01a216c1-bf90-7d92-bc24-57cfe45f9fab'
);
