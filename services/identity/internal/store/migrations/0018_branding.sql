-- A tenant's branding (issue 12): the name its pages and mails show ('' is
-- the registry's display name), an https logo URL and a #rrggbb accent
-- colour ('' is the default). identity validates them (internal/branding);
-- the checks here keep a row written by anything else from putting markup
-- or CSS into every page.
ALTER TABLE settings
    ADD COLUMN display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    ADD COLUMN logo_url     text NOT NULL DEFAULT '' CHECK (logo_url = '' OR (logo_url LIKE 'https://%' AND length(logo_url) <= 2048)),
    ADD COLUMN accent_color text NOT NULL DEFAULT '' CHECK (accent_color = '' OR accent_color ~ '^#[0-9a-fA-F]{6}$');
