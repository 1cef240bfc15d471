{ lang ? "en" }: { en = "Hello, world!"; fr = "Bonjour le monde !"; ja = "こんにちは世界"; }.${lang}
