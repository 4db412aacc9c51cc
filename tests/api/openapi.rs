use super::helpers::spawn_app;
