export * from './common';
export * from './typeorm';
export * from './sequelize';
