DELETE FROM aiProviders WHERE name IN ('openai', 'anthropic', 'google');
